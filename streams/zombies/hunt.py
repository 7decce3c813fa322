"""The hunt (wiring): scan an account with its credentials, turn the result into log entries, append them.

    open now (zombies projection) -> scan_account (boto3, in a thread) -> scan_entries (pure) -> log writer

Nothing here writes a projection: the runner folds the appended entries into `zombies` / `zombie_scans` like every
other entry, so a replay rebuilds them. Which open zombies a scan may resolve comes from the projection; if the
worker is behind, a zombie that vanished is resolved by the next scan instead (resolution ids are per episode, so
nothing is resolved twice).

Accounts come from streams/accounts (registered per tenant, credentials sealed); `Target` is all this module needs
of one, so tests and the benchmark can hand in any session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from projections.zombies import queries
from streams.accounts.session import WrongAccount
from streams.log.postgres import AppendResult
from streams.log.writer import LogWriter
from streams.prices.table import PriceTable
from streams.zombies.events import scan_entries, scan_id_for
from streams.zombies.pure import ALL_CHECKS, CheckThresholds
from streams.zombies.scan import RegionError, ScanResult, scan_account, session_client_factory

log = logging.getLogger("dd0c.zombies")


class Target(Protocol):
    """One account to hunt in: whose it is, and the regions it was registered with (empty: every enabled one)."""

    tenant: str
    account_id: str
    regions: Sequence[str]


@dataclass(frozen=True, slots=True)
class SimpleTarget:
    tenant: str
    account_id: str
    regions: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class HuntReport:
    tenant: str
    account_id: str
    scan_id: str
    result: ScanResult
    appended: AppendResult
    entries: int
    resolved: int
    not_judged: list[dict[str, Any]] = field(default_factory=list)


async def hunt_account(
    pool: asyncpg.Pool,
    log_writer: LogWriter,
    target: Target,
    session: Any,
    *,
    prices: PriceTable,
    now: datetime | None = None,
    thresholds: CheckThresholds | None = None,
    checks: Sequence[str] = ALL_CHECKS,
    regions: Sequence[str] | None = None,
    home_region: str = "us-east-1",
    max_attempts: int = 5,
    sleep: Callable[[float], None] | None = None,
) -> HuntReport:
    """Scan one account and append what it found. `regions` (the CLI's --region) narrows the target's regions.
    `session` must act as the target's account: the caller that builds it from the registry checks that
    (streams.accounts.verify_identity), so this scan's calls are only the ones it counts."""
    clock = now or datetime.now(UTC)
    started = datetime.now(UTC)
    if thresholds is None:
        thresholds = CheckThresholds.from_mapping(await queries.thresholds_of(pool, target.tenant))
    wanted = list(regions) if regions else (list(target.regions) or None)
    open_now = await queries.open_for_account(pool, target.tenant, target.account_id)
    extra: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    result = await asyncio.to_thread(
        scan_account,
        session_client_factory(session),
        tenant=target.tenant,
        account_id=target.account_id,
        now=clock,
        thresholds=thresholds,
        prices=prices,
        checks=checks,
        regions=wanted,
        home_region=home_region,
        max_attempts=max_attempts,
        **extra,
    )
    scan_id = scan_id_for(target.tenant, target.account_id, clock, wanted, checks)
    entries = scan_entries(
        target.tenant, target.account_id, result, open_now, now=clock, ingested_at=datetime.now(UTC),
        scan_id=scan_id, checks=checks, started_at=started,
    )
    appended = await log_writer.append(entries)
    resolved = sum(1 for e in entries if e.event_name == "ZombieResolved")
    for error in result.region_errors:
        log.warning("zombie scan %s/%s: %s %s in %s (%s)", target.tenant, target.account_id, error.operation,
                    error.code, error.region, error.check or "region")
    if result.reason:
        log.warning("zombie scan %s/%s %s: %s", target.tenant, target.account_id, result.status, result.reason)
    log.info("zombie scan %s/%s: %s, %d zombies, %d resolved, %d AWS calls, %d retries", target.tenant,
             target.account_id, result.status, len(result.found), resolved, result.calls_made, result.retries)
    return HuntReport(target.tenant, target.account_id, scan_id, result, appended, len(entries), resolved,
                      list(entries[-1].record.get("not_judged") or ()))


async def record_unreachable(
    log_writer: LogWriter,
    target: Target,
    error: BaseException,
    *,
    home_region: str = "us-east-1",
    checks: Sequence[str] = ALL_CHECKS,
    regions: Sequence[str] | None = None,
    now: datetime | None = None,
) -> HuntReport:
    """An account the hunter could not act as (AssumeRole refused, sealed secrets unreadable): a `failed` run in
    the log, so `zombies scans`, the API and the digest show it rather than a silence. It resolves nothing."""
    clock = now or datetime.now(UTC)
    code, operation = _error_code(error)
    message = str(error)
    failed = ScanResult(
        (), (RegionError(home_region, code, operation, None, message),), "failed", 0,
        reason=f"could not act as account {target.account_id}: {operation} failed with {code} ({message})",
    )
    wanted = list(regions) if regions else (list(target.regions) or None)
    scan_id = scan_id_for(target.tenant, target.account_id, clock, wanted, checks)
    entries = scan_entries(target.tenant, target.account_id, failed, (), now=clock, ingested_at=datetime.now(UTC),
                           scan_id=scan_id, checks=checks, started_at=clock)
    appended = await log_writer.append(entries)
    log.error("zombie scan %s/%s failed: %s", target.tenant, target.account_id, failed.reason)
    return HuntReport(target.tenant, target.account_id, scan_id, failed, appended, len(entries), 0)


def _error_code(error: BaseException) -> tuple[str, str]:
    """(code, operation) of a credentials failure: botocore's error code and operation when it has them."""
    if isinstance(error, WrongAccount):
        return error.code, error.operation
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code") or type(error).__name__)
        return code, str(getattr(error, "operation_name", None) or "AssumeRole")
    if type(error).__module__.startswith("botocore"):
        return type(error).__name__, "AssumeRole"
    return type(error).__name__, "open credentials"
