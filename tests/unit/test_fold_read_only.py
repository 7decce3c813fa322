"""What the fold passes over: read-only calls, whatever their name, and calls outside streams/fold.py FOLDED_CALLS.

The Postgres runner's read leaves both out (streams/log/postgres.py read_folded_after), which is exact only because
they fold to nothing: these tests hold the read-only rule for every call the folds act on and for every real record
of the cases and the corpus that produces something as a write, and hold that no stage acts on a real record whose
call is outside FOLDED_CALLS (so fold_entry's early return drops nothing a stage would have produced).
"""

from __future__ import annotations

from typing import Any

import pytest

from streams.fold import FOLDED_CALLS, FoldOutput, FoldState, fold_entry
from streams.ledger.lifecycle import LIFECYCLE
from streams.ledger.pure import changes
from streams.normalize.catalog import CATALOG, CREATES_WITHOUT_COST, is_create
from streams.normalize.pure import normalize, observations
from streams.score.policy import DEFAULT_POLICY
from tests.unit.test_normalize_support import CASES, CORPUS, call, entry, prices, read_records

# Every (eventSource, eventName) a stage acts on: priced calls, creates that price nothing, lifecycle steps.
ACTED_ON = sorted(set(CATALOG) | CREATES_WITHOUT_COST | set(LIFECYCLE))


def _fold(record: dict[str, Any]) -> tuple[FoldState, FoldOutput]:
    state, out = FoldState(), FoldOutput()
    fold_entry(state, entry(record, seq=1), prices(), lambda _tenant: DEFAULT_POLICY, out)
    return state, out


def _nothing(state: FoldState, out: FoldOutput) -> bool:
    return (out.cost_events, out.anomalies, out.metrics, out.rejected, out.zombies, state.baselines,
            state.resources) == ([], [], [], [], [], {}, {})


@pytest.mark.parametrize(("source", "name"), ACTED_ON)
def test_a_read_only_call_folds_to_nothing_for_every_call_the_folds_act_on(source: str, name: str) -> None:
    # A failed create is what the folds count even without a price (fold_metrics failed_create_attempts): flagged
    # read-only it is not counted. Successful calls give no cost event and no ledger step.
    failed = call(source, name, {}, None, errorCode="Client.UnauthorizedOperation", readOnly=True)
    assert _nothing(*_fold(failed))
    if is_create(source, name):  # the same record as a write is counted: the rule, not the record, decides
        assert _fold({**failed, "readOnly": False})[1].metrics == [("acme", "failed_create_attempts",
                                                                    "Client.UnauthorizedOperation")]
    ok = call(source, name, {"instanceType": "m5.large", "instancesSet": {"items": [{"instanceId": "i-1"}]}},
              {"instancesSet": {"items": [{"instanceId": "i-1", "instanceType": "m5.large"}]}}, readOnly=True)
    assert normalize(entry(ok), prices()) == []
    assert _nothing(*_fold(ok))


def _real_records() -> list[dict[str, Any]]:
    """Every CloudTrail call record of the cases and the corpus."""
    found = []
    for path in sorted(CASES.glob("*.json*")) + sorted(CORPUS.rglob("*.json")):
        try:
            records = read_records(path)
        except ValueError:
            continue  # the corpus keeps some malformed files on purpose
        found += [r for r in records if isinstance(r.get("eventSource"), str) and isinstance(r.get("eventName"), str)]
    return found


def _acting_records() -> list[dict[str, Any]]:
    """The real records that produce something as writes."""
    return [r for r in _real_records() if not _nothing(*_fold({**r, "readOnly": False}))]


def test_folded_calls_are_the_calls_the_stages_name() -> None:
    assert set(ACTED_ON) <= FOLDED_CALLS
    assert {("sagemaker.amazonaws.com", "CreateEndpointConfig"), ("dynamodb.amazonaws.com", "CreateTable")} <= (
        FOLDED_CALLS
    )
    assert ("ec2.amazonaws.com", "CreateTags") not in FOLDED_CALLS


def test_no_stage_acts_on_a_real_record_whose_call_is_outside_folded_calls() -> None:
    # The stages themselves (not fold_entry, which returns before them): nothing to lose by not reading these.
    outside = [r for r in _real_records() if (r["eventSource"], r["eventName"]) not in FOLDED_CALLS]
    assert len(outside) > 500  # ConsoleLogin, CreateTags, PutObject, AssumeRole, ... as writes and failed calls
    for record in outside:
        item = entry({**record, "readOnly": False}, seq=1)
        events = normalize(item, prices())
        assert events == [], record["eventName"]
        assert changes(item, []) == [] and observations(item, []) == [], record["eventName"]


def test_every_real_record_that_acts_as_a_write_does_nothing_flagged_read_only() -> None:
    records = _acting_records()
    # RunInstances, TerminateInstances, CreateVolume, ... of R25 and the corpus: at least 28 distinct calls
    assert len({(r["eventSource"], r["eventName"]) for r in records}) >= 28
    for record in records:
        assert _nothing(*_fold({**record, "readOnly": True})), (record["eventName"], record.get("eventID"))
