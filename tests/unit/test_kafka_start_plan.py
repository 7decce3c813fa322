"""Where a Kafka partition's folding starts (case R21), the seq of Kafka entries, and the retention warnings."""

from __future__ import annotations

import json

from streams.runner.faust_app import faust_broker, retention_warnings
from streams.runner.kafka import StartPlan, kafka_seq, plan_start, runner_name, seq_position
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
