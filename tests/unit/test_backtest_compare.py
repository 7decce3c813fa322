"""The backtest's bookkeeping (pure): per (account, severity) cell, candidate = live + gained - lost, and every
anomaly is in exactly one of gained / lost / changed / unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.events import Anomaly, Severity
from streams.replay.backtest import BacktestReport, _compare

T0 = datetime(2024, 5, 1, tzinfo=UTC)
SEVERITY = st.sampled_from(list(Severity))
ACCOUNT = st.sampled_from(["111122223333", "444455556666"])
# id -> (account, severity); the same id always has the same account (ids are uuid5 of tenant/account/event)
IDS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(12)]


def anomaly(n: int, account: str, severity: Severity) -> Anomaly:
    return Anomaly(
        id=IDS[n], tenant="default", account_id=account, resource_type="ec2_instance", region="us-east-1",
        event_ids=(f"e{n}",), event_time=T0 + timedelta(minutes=n), detected_at=T0 + timedelta(minutes=n),
        severity=severity, z=None, hourly_cost=0.096, expected_hourly_cost=None, baseline_stddev=None,
        baseline_n=0, actor="alice", instance_type="m5.large", reasons=(), backfill=False, learning=False,
    )


sides = st.dictionaries(st.integers(0, 11), SEVERITY, max_size=12)


@given(accounts=st.lists(ACCOUNT, min_size=12, max_size=12), live=sides, candidate=sides)
def test_cells_add_up(accounts: list[str], live: dict[int, Severity], candidate: dict[int, Severity]) -> None:
    report = BacktestReport("c", "default", {}, 0, 0, None, None)
    _compare(report, {IDS[n]: anomaly(n, accounts[n], s) for n, s in live.items()},
             {IDS[n]: anomaly(n, accounts[n], s) for n, s in candidate.items()})
    for cell in report.cells.values():
        assert cell.candidate == cell.live + cell.gained - cell.lost
    assert {a.id for a in report.gained} == {IDS[n] for n in candidate.keys() - live.keys()}
    assert {a.id for a in report.lost} == {IDS[n] for n in live.keys() - candidate.keys()}
    assert {new.id for _old, new in report.changed} == {
        IDS[n] for n in live.keys() & candidate.keys() if live[n] is not candidate[n]
    }
    assert report.totals["live"] == len(live) and report.totals["candidate"] == len(candidate)
