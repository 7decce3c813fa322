"""The learning window belongs to the account, not to each resource type (found by the demo's root-NAT incident).

A new account's first days are learning: novelty alone pages nobody. But an account we have watched for three
weeks is no longer new just because it creates its first NAT gateway - a root user doing that is news.
"""

from __future__ import annotations

from datetime import timedelta

from schemas.events import Severity
from streams.fold import FoldState
from streams.score.baseline import AccountHistory, account_history, fold_account
from streams.score.policy import DEFAULT_POLICY
from streams.score.pure import score
from tests.unit.test_score_support import T0, A, actor, cost_event, history

NAT_HOURLY = 0.045  # us-east-1 NAT gateway $/h


def root_nat(when_days: int) -> object:
    return cost_event(
        NAT_HOURLY,
        event_id="nat-1",
        when=T0 + timedelta(days=when_days),
        resource_type="nat_gateway",
        instance_type=None,
        who=actor(kind="root"),
    )


def test_root_nat_in_a_watched_account_is_not_learning_and_pages() -> None:
    ec2 = None
    account = None
    for event in history([0.096] * 21):  # one m5.large a day for three weeks
        ec2, _ = score(ec2, event, DEFAULT_POLICY, account)
        account = fold_account(account, event)
    assert account == AccountHistory(T0, 21)

    _, anomaly = score(None, root_nat(22), DEFAULT_POLICY, account)  # first NAT gateway ever, by root
    assert anomaly is not None
    assert anomaly.learning is False
    assert {r.signal for r in anomaly.reasons} == {"first_resource_type", "root_actor"}
    assert anomaly.severity.rank >= Severity.MEDIUM.rank  # DEFAULT_POLICY: root_actor is at least medium


def test_root_nat_in_a_brand_new_account_is_learning_and_stays_info() -> None:
    _, anomaly = score(None, root_nat(0), DEFAULT_POLICY, AccountHistory())
    assert anomaly is not None
    assert anomaly.learning is True
    assert anomaly.severity is Severity.INFO


def test_account_history_is_derived_from_the_baselines_and_kept_current_by_the_fold() -> None:
    state = FoldState()
    events = history([0.096] * 3) + history([0.2] * 2, account="444455556666")
    for event in events:
        key = (event.tenant, event.account_id, event.resource_type)
        h = state.account(event.tenant, event.account_id)
        state.baselines[key], _ = score(state.baselines.get(key), event, DEFAULT_POLICY, h)
        state.accounts[(event.tenant, event.account_id)] = fold_account(h, event)
    fresh = FoldState(baselines=dict(state.baselines))  # as a restarted runner would have it
    assert fresh.account("acme", A) == state.accounts[("acme", A)] == AccountHistory(T0, 3)
    assert account_history(state.baselines.values()) == AccountHistory(T0, 5)
