"""Which accounts a tenant takes records for.

The rule: a tenant with no registered account accepts every account (the first run: `dd0c-cost ingest` of a
folder, the demo). Once it registers one, only registered accounts are accepted, and a record for any other is
a Rejected value ("account 444455556666 is not registered for tenant acme") that goes to the dead letters while
the records next to it are logged. Load an Admission once per batch / file group: a registration made meanwhile
applies from the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from schemas.events import LogEntry, Rejected
from streams.accounts.registry import Db, registered_ids

STAGE = "read"  # dead_letters.stage of records refused here: the same stage as file ingest uses for them


@dataclass(frozen=True, slots=True)
class Admission:
    tenant: str
    registered: frozenset[str] | None  # None: the tenant has no registered account, everything is admitted

    @property
    def open(self) -> bool:
        return self.registered is None

    def admits(self, account_id: str) -> bool:
        return self.registered is None or account_id in self.registered

    def reason(self, account_id: str) -> str:
        return f"account {account_id} is not registered for tenant {self.tenant}"

    def check(self, entry: LogEntry, locator: str = "") -> LogEntry | Rejected:
        """The entry, or a Rejected naming the account, the tenant and the record (`locator`, e.g. "record 3")."""
        if self.admits(entry.account_id):
            return entry
        raw = orjson.dumps(entry.record, default=str)[:65536]
        reason = f"{self.reason(entry.account_id)} (eventID {entry.event_id})"
        return Rejected(reason, raw, entry.source, locator or f"eventID {entry.event_id}")


OPEN = Admission(tenant="", registered=None)


async def load_admission(db: Db, tenant: str) -> Admission:
    ids = await registered_ids(db, tenant)
    return Admission(tenant=tenant, registered=ids or None)
