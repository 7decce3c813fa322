"""JSONB through asyncpg (case R23) and the projection row codecs (exact Welford state, case R17)."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.anomalies.writer import from_document as anomaly_from_document
from projections.anomalies.writer import to_document as anomaly_to_document
from projections.baselines.writer import from_state, to_state
from projections.cost_events.writer import dumps_document as cost_event_row_json
from projections.cost_events.writer import from_document as cost_event_from_document
from projections.cost_events.writer import to_document as cost_event_to_document
from projections.db import connect, create_pool
from projections.resources.writer import from_document as resource_from_document
from projections.resources.writer import to_document as resource_to_document
from projections.rows import document, dumps_document, from_jsonable
from schemas.codec import NotJsonSafe, to_jsonable
from schemas.codec import dumps as codec_dumps
from schemas.events import Actor, Anomaly, Baseline, CostEvent, Reason, Resource, Severity, Welford
from tests.conftest import CASES

pytestmark = pytest.mark.integration

R23 = json.loads((CASES / "R23.json").read_text(encoding="utf-8"))


async def test_R23_jsonb_round_trips_through_every_pooled_connection(database_url: str) -> None:
    """R23: dict not str, 2^53+1 exact, non-ASCII intact, jsonb_typeof object, jsonb[] a list of dicts."""
    document, array = R23["document"], R23["jsonb_array"]
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE r23_projections (id INT PRIMARY KEY, doc JSONB NOT NULL, docs JSONB[])")
            await conn.execute("INSERT INTO r23_projections VALUES (1, $1, $2)", document, array)
            first_pid = await conn.fetchval("SELECT pg_backend_pid()")
            got = await conn.fetchval("SELECT doc FROM r23_projections WHERE id = 1")
            assert isinstance(got, dict)
            assert got == document
            assert got["big_int_micro_usd"] == 9007199254740993 == 2**53 + 1
            assert got["labels"]["note"] == "café – 東京"
            assert got["flags"] == [] and got["cost_status"] is None
            assert await conn.fetchval("SELECT jsonb_typeof(doc) FROM r23_projections WHERE id = 1") == "object"
            assert await conn.fetchval("SELECT doc->'labels'->>'note' FROM r23_projections") == "café – 東京"
            docs = await conn.fetchval("SELECT docs FROM r23_projections WHERE id = 1")
            assert docs == [{"a": 1}, {"b": [1, 2, 3]}]
            assert all(isinstance(d, dict) for d in docs)

            poisoned = {k: float(v) for k, v in R23["must_reject"].items()}  # {"mean": nan}
            assert math.isnan(poisoned["mean"])
            # The codec refuses while asyncpg encodes the Bind message - nothing reaches the server; asyncpg
            # wraps the encoder's error, which stays the cause.
            with pytest.raises(asyncpg.DataError) as refused:
                await conn.execute("INSERT INTO r23_projections VALUES (2, $1, NULL)", poisoned)
            assert isinstance(refused.value.__cause__, NotJsonSafe)
            assert "non-finite float nan" in str(refused.value)
            assert await conn.fetchval("SELECT count(*) FROM r23_projections") == 1

        await pool.expire_connections()  # as after a reconnect: the pool opens fresh connections
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != first_pid
            assert await conn.fetchval("SELECT doc FROM r23_projections WHERE id = 1") == document
            assert await conn.fetchval("SELECT docs FROM r23_projections WHERE id = 1") == array
    finally:
        await pool.close()


T0 = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def baselines(draw: st.DrawFn) -> Baseline:
    words = st.text(alphabet="abcdefghij:/-é東", min_size=1, max_size=12)
    first = draw(st.none() | st.just(T0))
    return Baseline(
        tenant="acme",
        account_id=draw(st.sampled_from(["111122223333", "444455556666"])),
        resource_type=draw(st.sampled_from(["ec2_instance", "ebs_volume"])),
        stats=Welford(n=draw(st.integers(0, 10**9)), mean=draw(finite), m2=draw(finite.map(abs))),
        actors=frozenset(draw(st.lists(words, max_size=4))),
        regions=frozenset(draw(st.lists(words, max_size=3))),
        families=frozenset(draw(st.lists(words, max_size=3))),
        events_seen=draw(st.integers(0, 10**6)),
        first_event_time=first,
        last_event_time=None if first is None else first + timedelta(microseconds=draw(st.integers(0, 10**12))),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(baselines(), min_size=1, max_size=5))
def test_baseline_state_round_trips_exactly_through_jsonb(sync_database_url: str, batch: list[Baseline]) -> None:
    """R17: the persisted state is Welford (n, mean, M2) as exact floats - reloading loses nothing."""

    async def through_postgres() -> list[Baseline]:
        conn = await connect(sync_database_url)
        try:
            docs = await conn.fetchval("SELECT $1::jsonb", [to_state(b) for b in batch])
            return [from_state(d) for d in docs]
        finally:
            await conn.close()

    assert asyncio.run(through_postgres()) == batch


def test_R17_welford_values_survive_jsonb_numeric(sync_database_url: str) -> None:
    """R17: 1e12-scale means and tiny M2 come back bit-for-bit (JSONB stores numbers as numeric)."""
    stats = [Welford(4, 1000000000010.0, 90.0), Welford(3, 100000001.0, 2.0), Welford(4, 1e16, 0.1 + 0.2)]
    batch = [Baseline("acme", str(i), "ec2_instance", s) for i, s in enumerate(stats)]

    async def through_postgres() -> list[Baseline]:
        conn = await connect(sync_database_url)
        try:
            return [from_state(await conn.fetchval("SELECT $1::jsonb", to_state(b))) for b in batch]
        finally:
            await conn.close()

    back = asyncio.run(through_postgres())
    assert [b.stats for b in back] == stats
    assert back[2].stats.mean == 1e16 and isinstance(back[2].stats.mean, float)
    assert back[2].stats.m2 == 0.30000000000000004


def test_documents_of_every_projection_decode_to_equal_dataclasses(sync_database_url: str) -> None:
    actor = Actor("arn:aws:iam::111122223333:user/alice", "user", "", False)
    event = CostEvent(
        tenant="acme", account_id="111122223333", event_id="e-1", ordinal=0, event_time=T0,
        ingested_at=T0 + timedelta(minutes=5), region="us-east-1", event_source="ec2.amazonaws.com",
        event_name="RunInstances", resource_type="ec2_instance", resource_ids=("i-1", "i-2"), actor=actor,
        quantity=2.0, unit="instance", instance_type="m5.large", family="m5", hourly_cost=0.192,
        cost_status="priced", pricing={"unit_price": 0.096, "source": "snapshot 2024-05"},
        attributes={"spot": False}, seq=17,
    )
    anomaly = Anomaly(
        id="7a1f8a4e-0000-5000-8000-000000000001", tenant="acme", account_id="111122223333",
        resource_type="ec2_instance", region="us-east-1", event_ids=("e-1",), event_time=T0,
        detected_at=T0 + timedelta(days=31), severity=Severity.HIGH, z=6.5, hourly_cost=0.192,
        expected_hourly_cost=0.096, baseline_stddev=0.01, baseline_n=12, actor=actor.key, instance_type="m5.large",
        reasons=(Reason("zscore", "z 6.5", {"z": 6.5}),), backfill=True, learning=False,
    )
    resource = Resource(
        tenant="acme", account_id="111122223333", resource_id="i-1", resource_type="ec2_instance",
        region="us-east-1", state="running", hourly_cost=0.096, opened_at=T0, changed_at=T0,
        instance_type="m5.large", opened_by_event="e-1", last_event="e-1", attributes={"az": "us-east-1a"},
    )

    async def through_postgres() -> tuple[dict, dict, dict]:
        conn = await connect(sync_database_url)
        try:
            return (
                await conn.fetchval("SELECT $1::jsonb", cost_event_to_document(event)),
                await conn.fetchval("SELECT $1::jsonb", anomaly_to_document(anomaly)),
                await conn.fetchval("SELECT $1::jsonb", resource_to_document(resource)),
            )
        finally:
            await conn.close()

    event_doc, anomaly_doc, resource_doc = asyncio.run(through_postgres())
    assert event_doc["priced"] is True and event_doc["hourly_cost"] == 0.192
    assert cost_event_from_document(event_doc) == event
    assert anomaly_doc["severity"] == "high" and anomaly_doc["event_time"] == "2024-05-01T11:00:00Z"
    assert anomaly_from_document(anomaly_doc) == anomaly
    assert resource_from_document(resource_doc) == resource


utc_times = st.datetimes(
    min_value=datetime(2013, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
texts = st.text(max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
mappings = st.dictionaries(texts, json_values, max_size=3)
actors = st.builds(Actor, key=texts, kind=texts, detail=texts, automation=st.booleans())
cost_events = st.builds(
    CostEvent, tenant=texts, account_id=texts, event_id=texts, ordinal=st.integers(0, 5), event_time=utc_times,
    ingested_at=utc_times, region=texts, event_source=texts, event_name=texts, resource_type=texts,
    resource_ids=st.lists(texts, max_size=3).map(tuple), actor=actors, quantity=finite,
    unit=texts, instance_type=st.none() | texts, family=st.none() | texts, hourly_cost=st.none() | finite,
    cost_status=texts, unpriced_reason=st.none() | texts, pricing=mappings, attributes=mappings,
    seq=st.none() | st.integers(1, 2**62),
)
reasons = st.builds(Reason, signal=texts, text=texts, data=mappings)
anomalies = st.builds(
    Anomaly, id=texts, tenant=texts, account_id=texts, resource_type=texts, region=texts,
    event_ids=st.lists(texts, max_size=2).map(tuple), event_time=utc_times, detected_at=utc_times,
    severity=st.sampled_from(Severity), z=st.none() | finite, hourly_cost=st.none() | finite,
    expected_hourly_cost=st.none() | finite, baseline_stddev=st.none() | finite, baseline_n=st.integers(0, 99),
    actor=texts, instance_type=st.none() | texts, reasons=st.lists(reasons, max_size=2).map(tuple),
    backfill=st.booleans(), learning=st.booleans(), policy=texts,
)
resources = st.builds(
    Resource, tenant=texts, account_id=texts, resource_id=texts, resource_type=texts, region=texts,
    state=st.sampled_from(["running", "stopped", "closed"]), hourly_cost=st.none() | finite, opened_at=utc_times,
    changed_at=utc_times, instance_type=st.none() | texts, opened_by_event=texts, last_event=texts,
    attributes=mappings,
)


@settings(max_examples=200, deadline=None)
@given(obj=cost_events | anomalies | resources | baselines())
def test_fast_document_encoder_equals_the_codec_and_decodes_back(obj: object) -> None:
    """The runner's compiled encoder writes exactly what schemas.codec.to_jsonable would, and decodes back."""
    assert document(obj) == to_jsonable(obj)
    assert json.loads(dumps_document(obj)) == json.loads(codec_dumps(obj))
    assert from_jsonable(type(obj), json.loads(dumps_document(obj))) == obj
    if isinstance(obj, CostEvent):
        assert json.loads(cost_event_row_json(obj)) == {**to_jsonable(obj), "priced": obj.hourly_cost is not None}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_fast_document_encoder_refuses_non_finite_floats(bad: float) -> None:
    resource = Resource("t", "a", "i-1", "ec2_instance", "us-east-1", "running", bad, T0, T0)
    with pytest.raises(NotJsonSafe):
        dumps_document(resource)
    nested = {"storage": [{"gib": 100, "iops": bad}]}
    with pytest.raises(NotJsonSafe):
        dumps_document(Resource("t", "a", "i-1", "ec2", "us-east-1", "running", 1.0, T0, T0, attributes=nested))
    actor = Actor(key=bad, kind="user")  # type: ignore[arg-type]  (a float where a str belongs: still caught)
    with pytest.raises(NotJsonSafe):
        dumps_document(Anomaly("id", "t", "a", "r", "us-east-1", (), T0, T0, Severity.LOW, None, None, None, None, 0,
                               actor, None, (), False, False))
