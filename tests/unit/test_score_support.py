"""Builders shared by the scoring tests: hand-made CostEvents (normalize is another stage's job) and a fold loop.

No tests here; the name only keeps it next to the tests that use it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from schemas.codec import dumps, to_jsonable
from schemas.events import Actor, Anomaly, Baseline, CostEvent
from streams.score.policy import DEFAULT_POLICY, Policy
from streams.score.pure import score

A = "111122223333"
B = "444455556666"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def actor(name: str = "alice", *, account: str = A, kind: str = "user", automation: bool = False) -> Actor:
    if kind == "root":
        return Actor(key=f"arn:aws:iam::{account}:root", kind="root")
    if kind == "service":
        return Actor(key=f"service:{name}", kind="service", automation=automation)
    return Actor(key=f"arn:aws:iam::{account}:{kind}/{name}", kind=kind, automation=automation)


def cost_event(
    hourly: float | None = 0.096,
    *,
    tenant: str = "acme",
    account: str = A,
    event_id: str = "e-1",
    ordinal: int = 0,
    when: datetime = T0,
    ingested: datetime | None = None,
    region: str = "us-east-1",
    resource_type: str = "ec2_instance",
    instance_type: str | None = "m5.large",
    who: Actor | None = None,
    quantity: float = 1.0,
    unpriced_reason: str | None = None,
) -> CostEvent:
    """A cost event as normalize would build it; ingested five minutes after eventTime unless told otherwise."""
    return CostEvent(
        tenant=tenant,
        account_id=account,
        event_id=event_id,
        ordinal=ordinal,
        event_time=when,
        ingested_at=ingested if ingested is not None else when + timedelta(minutes=5),
        region=region,
        event_source="ec2.amazonaws.com",
        event_name="RunInstances",
        resource_type=resource_type,
        resource_ids=(f"i-{event_id}",),
        actor=who if who is not None else actor(account=account),
        quantity=quantity,
        unit="instance",
        instance_type=instance_type,
        family=instance_type.split(".")[0] if instance_type else None,
        hourly_cost=hourly,
        cost_status="priced" if hourly is not None else "unpriced",
        unpriced_reason=unpriced_reason if hourly is None else None,
    )


def history(
    values: Iterable[float | None], *, account: str = A, start: datetime = T0, step: timedelta = timedelta(days=1)
) -> list[CostEvent]:
    """One m5.large-style event per value, `step` apart, by alice in us-east-1."""
    return [
        cost_event(v, account=account, event_id=f"h-{account}-{i}", when=start + i * step) for i, v in enumerate(values)
    ]


def fold_all(
    events: Iterable[CostEvent],
    policy: Policy = DEFAULT_POLICY,
    baselines: dict[tuple[str, str, str], Baseline] | None = None,
) -> tuple[dict[tuple[str, str, str], Baseline], list[Anomaly]]:
    """What streams.fold does with the events of successive log entries: score each against its own key."""
    state = dict(baselines or {})
    anomalies: list[Anomaly] = []
    for event in events:
        key = (event.tenant, event.account_id, event.resource_type)
        state[key], anomaly = score(state.get(key), event, policy)
        if anomaly is not None:
            anomalies.append(anomaly)
    return state, anomalies


def baseline_of(events: Iterable[CostEvent], policy: Policy = DEFAULT_POLICY) -> Baseline:
    state, _ = fold_all(events, policy)
    (only,) = state.values()
    return only


def assert_json_safe(*objs: object) -> None:
    """JSON has no NaN / Infinity; both serialisers must accept these objects."""
    for obj in objs:
        dumps(obj)
        json.dumps(to_jsonable(obj), allow_nan=False)
