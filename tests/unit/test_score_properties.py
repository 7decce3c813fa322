"""Properties of score(): deterministic, replayable, never NaN/Infinity, unpriced events never touch Welford."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import dumps
from schemas.events import Actor, CostEvent, Severity
from streams.score.policy import DEFAULT_POLICY, Policy
from streams.score.pure import score
from tests.unit.test_score_support import T0, A, B, actor, assert_json_safe, cost_event, fold_all

ACTORS = [actor("alice"), actor("bob"), actor(kind="root"), actor("autoscaling.amazonaws.com", kind="service",
                                                                   automation=True)]  # fmt: skip
TYPES = ["m5.large", "m5.2xlarge", "c5.large", "p4d.24xlarge", None]
# From free to absurd, plus unpriced (None): the scorer must stay finite across all of it.
HOURLY = st.one_of(st.none(), st.just(0.0), st.floats(min_value=1e-6, max_value=1e6, allow_nan=False))


@st.composite
def cost_events(draw: st.DrawFn) -> list[CostEvent]:
    n = draw(st.integers(min_value=0, max_value=30))
    events = []
    for i in range(n):
        account = draw(st.sampled_from([A, B]))
        who: Actor = draw(st.sampled_from(ACTORS))
        events.append(
            cost_event(
                draw(HOURLY),
                account=account,
                event_id=f"ev-{i}",
                when=T0 + timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 30))),
                ingested=T0 + timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 40))),
                region=draw(st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-3"])),
                resource_type=draw(st.sampled_from(["ec2_instance", "nat_gateway"])),
                instance_type=draw(st.sampled_from(TYPES)),
                who=replace(who, key=who.key.replace(A, account)),
            )
        )
    return events


policies = st.builds(
    lambda z, cold, floor, record: replace(
        DEFAULT_POLICY, name="drawn", z_threshold=z, z_medium=max(z, 4.0), cold_start_count=cold,
        std_floor_abs=floor, record_floor=record,
    ),
    st.floats(min_value=0.5, max_value=4.0),
    st.integers(min_value=2, max_value=8),
    st.floats(min_value=1e-9, max_value=1.0),
    st.sampled_from(list(Severity)),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(cost_events(), policies)
def test_replay_from_scratch_is_identical(events: list[CostEvent], policy: Policy) -> None:
    """Folding the same events twice from nothing gives equal baselines, anomalies and JSON (replay)."""
    first = fold_all(events, policy)
    second = fold_all(events, policy)
    assert first == second
    assert dumps(first[1]) == dumps(second[1])
    assert_json_safe(list(first[0].values()), first[1])


@settings(max_examples=150, deadline=None)
@given(cost_events(), HOURLY, policies)
def test_score_is_deterministic_and_finite(events: list[CostEvent], hourly: float | None, policy: Policy) -> None:
    state, _ = fold_all(events, policy)
    baseline = state.get(("acme", A, "ec2_instance"))
    probe = cost_event(hourly, event_id="probe", when=T0 + timedelta(days=31))
    once = score(baseline, probe, policy)
    again = score(baseline, probe, policy)
    assert once == again
    folded, anomaly = once
    assert_json_safe(folded, anomaly)
    assert folded.events_seen == (baseline.events_seen if baseline else 0) + 1
    if anomaly is not None:
        assert anomaly.severity.rank >= policy.record_floor.rank
        assert anomaly.reasons  # never an anomaly without a reason
        assert len({r.signal for r in anomaly.reasons}) == len(anomaly.reasons)


@settings(max_examples=150, deadline=None)
@given(cost_events())
def test_unpriced_events_never_touch_the_statistics(events: list[CostEvent]) -> None:
    """R16: dropping the unpriced events leaves every baseline's Welford state exactly the same."""
    with_all, _ = fold_all(events)
    priced_only, _ = fold_all([e for e in events if e.hourly_cost is not None])
    for key, base in with_all.items():
        expected = priced_only[key].stats if key in priced_only else None
        assert base.stats == expected or (expected is None and base.stats.n == 0)
