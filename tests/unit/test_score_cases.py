"""Field cases at the scoring level: R25 (spike in one account), R16 (unpriced), R06 (backfill), R09 (failed calls).

CostEvents are built by hand here - turning CloudTrail into them is normalize's job and tested there.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import Baseline, CostEvent, Severity
from streams.score.policy import DEFAULT_POLICY
from streams.score.pure import anomaly_id, score
from tests.conftest import CASES
from tests.unit.test_score_support import (
    A,
    B,
    actor,
    assert_json_safe,
    at,
    baseline_of,
    cost_event,
    fold_all,
    history,
)

# us-east-1 Linux on-demand $/h, from the price snapshot the catalog ships (Karpenter's generated table of
# 2026-07-20: p4d.24xlarge 21.957642 after AWS's 2025 GPU price cut; it was 32.7726 before).
PRICES = {"m5.large": 0.096, "p4d.24xlarge": 21.957642}


def r25_events() -> list[CostEvent]:
    """The cost events of R25.json, in file order: RunInstances becomes one event; TerminateInstances none."""
    events = []
    for rec in json.loads((CASES / "R25.json").read_text())["Records"]:
        if rec["eventName"] != "RunInstances":
            continue  # a terminate creates nothing that bills (it closes resources in the ledger)
        (item,) = rec["responseElements"]["instancesSet"]["items"]
        account = rec["recipientAccountId"]
        when = at(rec["eventTime"])
        events.append(
            cost_event(
                PRICES[item["instanceType"]],
                account=account,
                event_id=rec["eventID"],
                when=when,
                ingested=when + timedelta(minutes=5),  # delivered like live CloudTrail
                region=rec["awsRegion"],
                instance_type=item["instanceType"],
                who=actor(rec["userIdentity"]["userName"], account=account),
            )
        )
    return events


def test_r25_p4d_spike_in_account_a_is_critical() -> None:
    """R25: after 5 days of one m5.large a day, A's p4d.24xlarge is flagged critical (zscore + new_family)."""
    events = r25_events()
    assert len(events) == 11  # 10 m5.large + 1 p4d; B's TerminateInstances produced nothing
    state, anomalies = fold_all(events)

    # Each account's first m5.large is its first ec2_instance ever: info, learning. The rest is quiet until the p4d.
    assert [(a.account_id, a.severity, [r.signal for r in a.reasons]) for a in anomalies] == [
        (A, Severity.INFO, ["first_resource_type"]),
        (B, Severity.INFO, ["first_resource_type"]),
        (A, Severity.CRITICAL, ["zscore", "new_family"]),
    ]
    spike = anomalies[-1]
    assert spike.tenant == "acme" and spike.account_id == A
    assert spike.actor == f"arn:aws:iam::{A}:user/alice"
    assert spike.region == "us-east-1" and spike.instance_type == "p4d.24xlarge"
    assert spike.hourly_cost == 21.957642
    assert spike.event_ids == ("00000000-0000-4000-8000-000000002511",)
    assert spike.event_time == datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
    assert spike.detected_at == datetime(2024, 5, 6, 9, 5, tzinfo=UTC)  # minutes after, not a daily roll-up
    assert not spike.backfill
    # Against A's own baseline: 5 x $0.096/h, std 0, floor 5% x 0.096 = 0.0048 -> z = 21.861642 / 0.0048.
    assert spike.expected_hourly_cost == 0.096 and spike.baseline_stddev == 0.0 and spike.baseline_n == 5
    assert spike.z == pytest.approx(4554.50875)
    assert spike.learning  # 5 events and 5 days in: still learning, yet the z verdict stands (not novelty alone)
    zreason, family = spike.reasons
    assert zreason.text == "$21.96/h vs a typical $0.096/h per event (z=4555 over 5 events) for 1 x p4d.24xlarge"
    assert zreason.data["expected_hourly"] == 0.096 and zreason.data["actual_hourly"] == 21.957642
    assert zreason.data["increase_hourly"] == pytest.approx(21.861642)
    assert (zreason.data["baseline_n"], zreason.data["baseline_mean"], zreason.data["baseline_stddev"]) == (
        5,
        0.096,
        0.0,
    )
    assert zreason.data["effective_stddev"] == pytest.approx(0.0048)
    assert family.text == "first p4d instance in this account (1 x p4d.24xlarge in us-east-1 by alice)"
    assert family.data == {"family": "p4d", "instance_type": "p4d.24xlarge", "known_families": ["m5"]}
    assert spike.id == str(uuid.UUID(spike.id))
    assert spike.id == anomaly_id("acme", A, "00000000-0000-4000-8000-000000002511", 0, "ec2_instance")

    # Baselines are per account: A folded the p4d in, B still has its five m5.large.
    a, b = state[("acme", A, "ec2_instance")], state[("acme", B, "ec2_instance")]
    assert (a.stats.n, b.stats.n) == (6, 5)
    assert b.stats.mean == 0.096 and b.families == frozenset({"m5"})
    assert a.families == frozenset({"m5", "p4d"})
    assert_json_safe(a, b, *anomalies)


def test_r25_account_b_does_not_offset_account_a() -> None:
    """R25: A's verdict is the same with or without B in the stream - B cannot dilute or cancel it."""
    events = r25_events()
    _, with_b = fold_all(events)
    _, only_a = fold_all([e for e in events if e.account_id == A])
    assert with_b[-1] == only_a[-1]


def test_r16_unpriced_events_flag_novelty_without_touching_welford() -> None:
    """R16: unpriced eu-south-1 / ap-southeast-3 / c8g events: novelty fires, Welford n stays where it was."""
    seed = history([0.096, 0.096, 0.096])  # three priced m5.large in us-east-1 by alice
    before = baseline_of(seed)
    unpriced = [
        cost_event(None, event_id="1601", region="eu-south-1", instance_type="m5.2xlarge",
                   when=at("2024-05-04T14:00:00Z"), unpriced_reason="unknown_region"),
        cost_event(None, event_id="1602", region="ap-southeast-3", instance_type="m5.large",
                   when=at("2024-05-04T14:01:00Z"), unpriced_reason="unknown_region"),
        cost_event(None, event_id="1603", region="us-east-1", instance_type="c8g.large",
                   when=at("2024-05-04T14:02:00Z"), unpriced_reason="unknown_instance_type"),
    ]  # fmt: skip
    state, anomalies = fold_all(unpriced, baselines={("acme", A, "ec2_instance"): before})
    after = state[("acme", A, "ec2_instance")]

    assert after.stats == before.stats  # n=3, mean 0.096: None never became 0
    assert (after.stats.n, after.stats.mean, after.events_seen) == (3, 0.096, 6)
    assert after.regions == frozenset({"us-east-1", "eu-south-1", "ap-southeast-3"})
    assert after.families == frozenset({"m5", "c8g"})
    assert [[(r.signal, r.data.get("region") or r.data.get("family")) for r in a.reasons] for a in anomalies] == [
        [("new_region", "eu-south-1")],
        [("new_region", "ap-southeast-3")],
        [("new_family", "c8g")],
    ]
    for anomaly in anomalies:
        assert anomaly.hourly_cost is None and anomaly.z is None
        assert anomaly.expected_hourly_cost == 0.096 and anomaly.baseline_n == 3
        assert anomaly.severity is Severity.INFO and anomaly.learning  # 3-6 events: learning
    assert_json_safe(after, *anomalies)

    # Later priced events score exactly as if the unpriced ones had never been there: two more m5.large bring
    # the baseline to 5 priced events, then $2/h gives z = (2 - 0.096) / 0.0048 either way.
    more = [cost_event(0.096, event_id=f"more-{i}", when=at(f"2024-05-0{5 + i}T09:00:00Z")) for i in range(2)]
    probe = cost_event(2.0, event_id="probe", when=at("2024-05-07T09:00:00Z"))
    verdicts = []
    for start in (after, before):
        _, found = fold_all([*more, probe], baselines={("acme", A, "ec2_instance"): start})
        verdicts.append(found[-1])
    seen_unpriced, without = verdicts
    assert seen_unpriced.expected_hourly_cost == without.expected_hourly_cost == 0.096
    assert seen_unpriced.z == without.z == pytest.approx(396.6666667)
    assert seen_unpriced.severity is without.severity is Severity.HIGH


def test_r16_unpriced_first_events_from_scratch() -> None:
    """R16 on an empty account: the first event is the first ec2_instance (in eu-south-1), then region, family."""
    events = [
        cost_event(None, event_id="1601", region="eu-south-1", instance_type="m5.2xlarge"),
        cost_event(None, event_id="1602", region="ap-southeast-3", instance_type="m5.large"),
        cost_event(None, event_id="1603", region="us-east-1", instance_type="c8g.large"),
    ]
    state, anomalies = fold_all(events)
    assert [[r.signal for r in a.reasons] for a in anomalies] == [
        ["first_resource_type"],
        ["new_region"],
        ["new_region", "new_family"],
    ]
    assert anomalies[0].reasons[0].data["region"] == "eu-south-1"
    assert anomalies[0].reasons[0].text == (
        "first ec2_instance ever seen in this account (1 x m5.2xlarge in eu-south-1 by alice)"
    )
    assert anomalies[1].reasons[0].data["region"] == "ap-southeast-3"
    assert anomalies[2].reasons[1].data["family"] == "c8g"
    assert all(a.expected_hourly_cost is None and a.z is None for a in anomalies)
    (base,) = state.values()
    assert (base.stats.n, base.events_seen) == (0, 3)


def test_r06_backfilled_history_is_marked_backfill() -> None:
    """R06: May events ingested on 2024-06-01 keep their event_time; their anomaly has backfill=True."""
    june = datetime(2024, 6, 1, tzinfo=UTC)
    times = ["2024-05-01T08:00:00Z", "2024-05-01T09:00:00.123Z", "2024-05-02T10:00:00Z"]
    events = [cost_event(0.096, event_id=f"060{i + 1}", when=at(t), ingested=june) for i, t in enumerate(times)]
    state, anomalies = fold_all(events)
    (first,) = anomalies  # the first-ever ec2_instance; the other two are the same actor/region/family
    assert first.event_time == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert first.detected_at == june
    assert first.backfill is True
    assert first.severity is Severity.INFO and first.learning
    base: Baseline = state[("acme", A, "ec2_instance")]
    assert base.stats.n == 3 and base.events_seen == 3
    assert base.first_event_time == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert base.last_event_time == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)  # nothing lands in June
    assert_json_safe(base, first)


@pytest.mark.parametrize(
    ("delay", "backfill"),
    [(timedelta(minutes=5), False), (timedelta(hours=6), False), (timedelta(hours=6, seconds=1), True)],
)
def test_r06_backfill_threshold(delay: timedelta, backfill: bool) -> None:
    """R06: backfill means ingested more than backfill_after (6 h) after eventTime; exactly 6 h is still live."""
    when = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    _, anomaly = score(None, cost_event(when=when, ingested=when + delay), DEFAULT_POLICY)
    assert anomaly is not None and anomaly.backfill is backfill
    assert anomaly.detected_at == when + delay


def test_r09_failed_calls_leave_later_successes_novel() -> None:
    """R09: failed creates produce no cost event, so a later successful one by ci-role / in ap-northeast-3 / p4d
    is still novel on every count."""
    base = baseline_of(history([0.096] * 12, step=timedelta(days=1)))  # record 1's kind of launch, 12 days
    ci = actor("ci-role", kind="role")
    later = cost_event(21.957642, event_id="later", region="ap-northeast-3", instance_type="p4d.24xlarge", who=ci,
                       when=base.last_event_time + timedelta(hours=1))  # fmt: skip
    _, anomaly = score(base, later, DEFAULT_POLICY)
    assert anomaly is not None
    assert [r.signal for r in anomaly.reasons] == ["zscore", "new_actor", "new_region", "new_family"]
    assert anomaly.severity is Severity.CRITICAL and not anomaly.learning
    assert anomaly.reasons[1].text == "first ec2_instance created by ci-role in this account"
