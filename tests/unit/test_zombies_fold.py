"""Zombie facts as log entries and the zombies row fold: deterministic ids, what a scan may resolve, episodes,
decisions, replayed positions, and bad entries as values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from schemas.events import LogEntry, Rejected
from streams.fold import FoldOutput, FoldState, fold_entry
from streams.prices.table import load_default_prices
from streams.score.policy import DEFAULT_POLICY
from streams.zombies import events as ev
from streams.zombies.fold import ZombieRow, apply, effective_status
from streams.zombies.pure import Zombie
from streams.zombies.scan import RegionError, ScanResult

T0 = datetime(2024, 6, 1, 6, tzinfo=UTC)
DAY = timedelta(days=1)
VOL = Zombie("acme", "111122223333", "us-east-1", "vol-1", "ebs_volume", "unattached_ebs_volume", 8.0,
             {"size_gib": 100})
NAT = Zombie("acme", "111122223333", "eu-west-1", "nat-1", "nat_gateway", "idle_nat_gateway", 32.85, {})


def result(*found: Zombie, completed: tuple[tuple[str, str], ...] = (), errors: tuple[RegionError, ...] = (),
           status: str = "ok") -> ScanResult:
    return ScanResult(found, errors, status, 5, ("us-east-1", "eu-west-1"), 0, completed)  # type: ignore[arg-type]


def entries(res: ScanResult, open_now: list[ev.OpenZombie], now: datetime = T0) -> list[LogEntry]:
    return ev.scan_entries("acme", "111122223333", res, open_now, now=now, ingested_at=now, scan_id="s-1",
                           checks=("unattached_ebs_volume", "idle_nat_gateway"))


def decoded(entry: LogEntry, seq: int) -> ev.ZombieEvent:
    out = ev.decode(replace(entry, seq=seq))
    assert isinstance(out, ev.ZombieEvent), out
    return out


def test_detection_ids_dedupe_a_rescan_of_the_same_state_only() -> None:
    same_day = ev.detected_entry(VOL, T0 + timedelta(hours=5), T0, "s-2").event_id
    assert ev.detected_entry(VOL, T0, T0, "s-1").event_id == same_day
    assert ev.detected_entry(VOL, T0 + DAY, T0, "s-3").event_id != same_day  # a new day: last_seen moves
    assert ev.detected_entry(replace(VOL, monthly_waste_usd=9.0), T0, T0, "s-1").event_id != same_day


def test_only_a_complete_check_resolves_and_unknown_is_not_absence() -> None:
    vol_id = ev.zombie_id("acme", "111122223333", "us-east-1", "unattached_ebs_volume", "vol-1")
    nat_id = ev.zombie_id("acme", "111122223333", "eu-west-1", "idle_nat_gateway", "nat-1")
    open_now = [ev.OpenZombie(vol_id, "us-east-1", "unattached_ebs_volume", T0 - DAY),
                ev.OpenZombie(nat_id, "eu-west-1", "idle_nat_gateway", T0 - DAY)]
    # us-east-1 volumes ran to the end and found nothing; eu-west-1's NAT check was denied.
    denied = (RegionError("eu-west-1", "UnauthorizedOperation", "DescribeNatGateways", "idle_nat_gateway"),)
    out = entries(result(completed=(("us-east-1", "unattached_ebs_volume"),), errors=denied, status="partial"),
                  open_now)
    assert [(e.event_name, e.record.get("zombie_id")) for e in out] == [
        (ev.RESOLVED, vol_id), (ev.SCANNED, None)]
    assert out[-1].record["errors"][0]["code"] == "UnauthorizedOperation"
    # The NAT seen again but `unknown` (metrics denied): not resolved, not detected, listed as not judged.
    unknown = replace(NAT, status="unknown", evidence={"unknown_because": ["GetMetricData: AccessDenied"]})
    out = entries(result(unknown, completed=(("eu-west-1", "idle_nat_gateway"),)), open_now[1:])
    assert [e.event_name for e in out] == [ev.SCANNED]
    assert out[0].record["not_judged"][0]["why"] == ["GetMetricData: AccessDenied"]


def test_row_fold_episodes_and_decisions() -> None:
    detect = decoded(ev.detected_entry(VOL, T0, T0, "s-1"), 10)
    row = apply(None, detect)
    assert row is not None and (row.status, row.first_seen, row.monthly_waste_usd) == ("open", T0, 8.0)
    assert apply(row, detect) is None  # a replayed position changes nothing

    row = apply(row, decoded(ev.detected_entry(VOL, T0 + DAY, T0, "s-2"), 11))
    assert row is not None and (row.first_seen, row.last_seen, row.detections) == (T0, T0 + DAY, 2)
    ack = ev.action_entry("acme", "111122223333", row.zombie_id, ev.ACKNOWLEDGED, by="alice", reason="known",
                          at=T0 + DAY)
    row = apply(row, decoded(ack, 12))
    assert row is not None and effective_status(row, T0 + DAY) == "acknowledged"

    gone = ev.OpenZombie(row.zombie_id, "us-east-1", "unattached_ebs_volume", T0)
    stale = ev.OpenZombie(row.zombie_id, "us-east-1", "unattached_ebs_volume", T0 - DAY)
    assert apply(row, decoded(ev.resolved_entry("acme", "111122223333", stale, T0, T0, "s"), 13)) is None
    row = apply(row, decoded(ev.resolved_entry("acme", "111122223333", gone, T0 + 2 * DAY, T0, "s-3"), 14))
    assert row is not None and (row.status, row.resolved_at) == ("resolved", T0 + 2 * DAY)

    # It comes back: a new episode, the old acknowledgement no longer applies.
    row = apply(row, decoded(ev.detected_entry(VOL, T0 + 5 * DAY, T0, "s-4"), 15))
    assert row is not None
    assert (row.status, row.opened_at, row.first_seen, row.episodes, row.acknowledged_by) == (
        "open", T0 + 5 * DAY, T0, 2, None)
    snooze = ev.action_entry("acme", "111122223333", row.zombie_id, ev.SNOOZED, by="bob", reason="later",
                             at=T0 + 5 * DAY, until=T0 + 7 * DAY)
    row = apply(row, decoded(snooze, 16))
    assert isinstance(row, ZombieRow)
    assert [effective_status(row, T0 + d * DAY) for d in (6, 7, 8)] == ["snoozed", "open", "open"]
    assert [h["action"] for h in row.history] == [ev.ACKNOWLEDGED, ev.SNOOZED]


def test_bad_zombie_entries_are_rejected_with_the_reason() -> None:
    good = ev.detected_entry(VOL, T0, T0, "s-1")
    cases = {
        "unknown zombie event 'ZombieExploded'": replace(good, event_name="ZombieExploded"),
        "ZombieDetected without zombie_id": replace(good, record={**good.record, "zombie_id": ""}),
        "monthly_waste_usd must be a non-negative number or null": replace(
            good, record={**good.record, "monthly_waste_usd": -1}),
    }
    for reason, entry in cases.items():
        out = ev.decode(replace(entry, seq=7))
        assert isinstance(out, Rejected) and reason in out.reason and "log seq 7" in out.reason, out


def test_fold_entry_routes_zombie_entries() -> None:
    state, out = FoldState(), FoldOutput()
    prices = load_default_prices()
    fold_entry(state, replace(ev.detected_entry(VOL, T0, T0, "s-1"), seq=1), prices, lambda _: DEFAULT_POLICY, out)
    bad = replace(ev.detected_entry(NAT, T0, T0, "s-1"), seq=2, event_name="Nope")
    fold_entry(state, bad, prices, lambda _: DEFAULT_POLICY, out)
    assert [(z.name, z.seq) for z in out.zombies] == [(ev.DETECTED, 1)]
    assert len(out.rejected) == 1 and out.cost_events == []
