"""Folders are ingested in delivery order (the stamp in CloudTrail's file names), not in S3-layout name order."""

from __future__ import annotations

from pathlib import Path

from ops.ingest import IngestReport, delivery_order, find_log_files


def test_a_multi_region_bucket_is_read_in_delivery_time_order(tmp_path: Path) -> None:
    names = {
        "AWSLogs/111122223333/CloudTrail/us-east-1/2024/06/01/111122223333_CloudTrail_us-east-1_20240601T0905Z_a.json.gz",
        "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0905Z_b.json.gz",
        "AWSLogs/111122223333/CloudTrail/us-west-2/2024/05/15/111122223333_CloudTrail_us-west-2_20240515T1200Z_c.json.gz",
        "AWSLogs/444455556666/CloudTrail/eu-west-1/2024/05/02/444455556666_CloudTrail_eu-west-1_20240502T0000Z_d.json.gz",
        "exports/manual.json",
    }
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"{}")
    walked = list(find_log_files([tmp_path]))
    # by name the walk gives account 111122223333's us-east-1 June before its us-west-2 May
    assert [p.name[-9:-8] for p in walked] == ["b", "a", "c", "d", "n"]
    ordered = delivery_order(walked)
    assert [p.name for p in ordered] == [
        "manual.json",  # no delivery stamp: first, in walk order
        "111122223333_CloudTrail_us-east-1_20240501T0905Z_b.json.gz",
        "444455556666_CloudTrail_eu-west-1_20240502T0000Z_d.json.gz",
        "111122223333_CloudTrail_us-west-2_20240515T1200Z_c.json.gz",
        "111122223333_CloudTrail_us-east-1_20240601T0905Z_a.json.gz",
    ]


def test_finding_nothing_is_not_a_success() -> None:
    assert IngestReport().ok is False
