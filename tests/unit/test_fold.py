"""streams.fold.fold_entry itself - the composition every runner uses - on case R25's real records.

The stage tests build their own loops; this one checks the order and the bookkeeping of the real composition:
normalize -> score (against the account's history) -> ledger, and what it marks for the runner to write.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from schemas.cloudtrail import RawRecord, to_log_entry
from schemas.events import LogEntry, Severity
from streams.fold import FoldOutput, FoldState, fold_entry
from streams.prices.table import load_default_prices
from streams.score.baseline import AccountHistory
from streams.score.policy import DEFAULT_POLICY
from tests.conftest import CASES

A, B = "111122223333", "444455556666"
INGESTED = datetime(2024, 5, 6, 9, 10, tzinfo=UTC)  # five minutes after the last record: live, not backfill


def entries() -> list[LogEntry]:
    made = []
    for i, record in enumerate(json.loads((CASES / "R25.json").read_text())["Records"], start=1):
        entry = to_log_entry(RawRecord(record, f"record {i}"), tenant="acme", ingested_at=INGESTED, source="R25")
        assert isinstance(entry, LogEntry)
        made.append(LogEntry(**{**{f: getattr(entry, f) for f in entry.__slots__}, "seq": i}))  # as read back
    return made


def test_r25_through_fold_entry() -> None:
    state, out = FoldState(), FoldOutput()
    for entry in entries():
        fold_entry(state, entry, load_default_prices(), lambda _tenant: DEFAULT_POLICY, out)

    # 10 x m5.large (5 per account) and the p4d; B's TerminateInstances creates nothing
    assert [e.instance_type for e in out.cost_events].count("m5.large") == 10
    assert [e.seq for e in out.cost_events][-1] == 11  # events carry the log position of their record
    assert state.accounts[("acme", A)] == AccountHistory(datetime(2024, 5, 1, 9, tzinfo=UTC), 6)
    assert state.accounts[("acme", B)] == AccountHistory(datetime(2024, 5, 1, 9, tzinfo=UTC), 5)
    assert state.dirty_baselines == {("acme", A, "ec2_instance"), ("acme", B, "ec2_instance")}
    assert state.baselines[("acme", A, "ec2_instance")].stats.n == 6
    assert state.baselines[("acme", B, "ec2_instance")].stats.mean == 0.096

    spike = out.anomalies[-1]
    assert (spike.account_id, spike.instance_type, spike.severity) == (A, "p4d.24xlarge", Severity.CRITICAL)
    assert spike.hourly_cost == 21.957642 and spike.backfill is False and spike.learning is True
    assert {r.signal for r in spike.reasons} == {"zscore", "new_family"}
    # every earlier anomaly is a first-of-its-kind note in a learning account: info, pages nobody
    assert {(a.severity, a.learning) for a in out.anomalies[:-1]} == {(Severity.INFO, True)}
    assert out.rejected == []


def test_a_restarted_state_derives_the_same_account_history() -> None:
    state, out = FoldState(), FoldOutput()
    for entry in entries():
        fold_entry(state, entry, load_default_prices(), lambda _tenant: DEFAULT_POLICY, out)
    restarted = FoldState(baselines=dict(state.baselines))  # as the runner reloads it: no accounts stored
    assert restarted.account("acme", A) == state.accounts[("acme", A)]
    assert restarted.account("acme", B) == state.accounts[("acme", B)]
    assert restarted.account("acme", "999999999999") == AccountHistory()
