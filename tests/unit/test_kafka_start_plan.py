"""Where a Kafka partition's folding starts (case R21), the seq of Kafka entries, the retention warnings, which
messages of a batch are folded, and the fetch wait of the worker's consumer."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ops.settings import Settings
from streams.log.kafka import KafkaSpec
from streams.runner.faust_app import build_app, faust_broker, retention_warnings
from streams.runner.faust_transport import FETCH_MAX_WAIT_MS, Transport
from streams.runner.kafka import Message, StartPlan, contiguous_after, kafka_seq, plan_start, runner_name, seq_position
from tests.conftest import CASES


def r21_watermarks() -> dict[int, tuple[int, int]]:
    case = json.loads((CASES / "R21.json").read_text())
    return {p["partition"]: (p["low_watermark"], p["high_watermark"]) for p in case["partitions"]}


def test_r21_empty_partitions_are_caught_up_at_once() -> None:
    marks = r21_watermarks()
    # partition 0: everything aged out (5400..5400), nothing folded yet -> the lost offsets are a gap, start at the end
    assert plan_start(None, *marks[0]) == StartPlan(seek_to=5400, gap=(0, 5399), caught_up=True)
    # partition 0 again, folded up to its end before: no gap, nothing to wait for
    assert plan_start(5399, *marks[0]) == StartPlan(seek_to=5400, caught_up=True)
    # partition 2: never written
    assert plan_start(None, *marks[2]) == StartPlan(seek_to=0, caught_up=True)


def test_r21_partition_with_data_replays_from_its_position() -> None:
    marks = r21_watermarks()
    assert plan_start(1199, *marks[1]) == StartPlan(seek_to=1200)  # offsets 1200-1349 to fold


def test_r21_retention_gap_is_named_and_passed_over() -> None:
    # partition 3: folding was at offset 820 when retention deleted everything up to 850; first available 851
    assert plan_start(819, 851, 900) == StartPlan(seek_to=851, gap=(820, 850))


def test_position_past_the_end_is_flagged() -> None:
    assert plan_start(99, 0, 10) == StartPlan(seek_to=100, caught_up=True, beyond_end=True)


def test_seq_of_a_kafka_entry_is_partition_and_offset() -> None:
    assert kafka_seq(0, 17) == 17
    assert kafka_seq(3, 17) == 3 * 2**40 + 17
    assert seq_position(kafka_seq(11, 123_456_789)) == (11, 123_456_789)
    assert runner_name("dd0c.cloudtrail.raw", 2) == "fold-v1:kafka:dd0c.cloudtrail.raw:2"


def test_retention_warnings_name_what_deletes_data() -> None:
    case = json.loads((CASES / "R21.json").read_text())["topic_config_under_test"]
    config = {k: str(v) for k, v in case.items()}  # cleanup.policy=delete, retention.ms=604800000 (7 days)
    (warning,) = retention_warnings(config, "raw")
    assert "retention.ms=604800000" in warning and "cleanup.policy=delete" in warning
    assert retention_warnings({"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}, "raw") == []
    assert retention_warnings({}, "raw") == []  # a broker that reports nothing (tansu): its defaults are unknown
    (compact,) = retention_warnings({"cleanup.policy": "compact", "retention.ms": "-1"}, "raw")
    assert "one entry per account" in compact


def test_faust_broker_url() -> None:
    assert faust_broker("k1:9092,k2:9093") == "kafka://k1:9092;kafka://k2:9093"


async def test_the_worker_consumer_waits_at_most_100_ms_per_fetch() -> None:
    """faust builds its consumer with a 1500 ms fetch wait; ours asks for 100 ms (streams/runner/faust_transport.py).
    Nothing connects: the consumer is built, read and closed unstarted."""
    spec = KafkaSpec(bootstrap="127.0.0.1:9", topic="dd0c-unit", partitions=2)
    app = build_app(spec, Settings(), folder=None, batch=10)  # type: ignore[arg-type]  (the folder is not called)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    try:
        assert isinstance(app.transport, Transport)
        assert (consumer._fetch_max_wait_ms, FETCH_MAX_WAIT_MS) == (100, 100)
        assert consumer._group_id == "dd0c-fold-v1"  # faust's own settings are kept
    finally:
        await consumer.stop()


def _msgs(*offsets: int) -> list[Message]:
    return [Message("t", 0, o, b"k", f"v{o}".encode()) for o in offsets]


def test_a_stale_read_and_the_reread_after_a_seek_fold_each_offset_once_and_stop_at_the_hole() -> None:
    # stored position 35; stale buffered 30..40 and the re-read 36..38 share offsets; 41..59 were never fetched
    batch = _msgs(*range(30, 41), *range(36, 39), *range(60, 64))
    run, cut = contiguous_after(batch, 35)
    assert [m.offset for m in run] == [36, 37, 38, 39, 40]
    assert [m.value for m in run][:3] == [b"v36", b"v37", b"v38"]
    assert cut is True
    assert contiguous_after(_msgs(36, 37, 38), 35) == (_msgs(36, 37, 38), False)
    assert contiguous_after(_msgs(10, 20), 35) == ([], False)  # all at or below the position: a re-read
    # the first message may be past done + 1 (the caller rewinds or records a retention gap); holes after it cut
    assert [m.offset for m in contiguous_after(_msgs(50, 51, 53), 35)[0]] == [50, 51]


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=80), st.integers(min_value=-1, max_value=40))
def test_the_run_is_consecutive_and_cut_says_whether_anything_past_it_was_left(offsets: list[int], done: int) -> None:
    run, cut = contiguous_after(_msgs(*offsets), done)
    got = [m.offset for m in run]
    assert got == list(range(got[0], got[0] + len(got))) if got else True
    past = sorted({o for o in offsets if o > done})
    assert got == past[: len(got)]  # the smallest offsets past the position, none skipped
    assert cut == (len(got) < len(past))
