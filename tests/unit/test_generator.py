"""The demo / benchmark history generator: real S3 delivery files, deterministic, with countable incidents."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.demo.generate import (
    GenerateError,
    Params,
    _allocate,
    delivery_files,
    ensure_history,
    generate,
    iter_records,
    read_manifest,
)

SMALL = Params(days=8, accounts=4, records=6000, seed=7, end=datetime(2024, 5, 22, tzinfo=UTC))
KEY = re.compile(
    r"^AWSLogs/(?P<acc>\d{12})/CloudTrail/(?P<region>[a-z]{2}-[a-z]+-\d)/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/"
    r"(?P=acc)_CloudTrail_(?P=region)_(?P<stamp>(?P=y)(?P=m)(?P=d)T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$"
)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("history")
    generate(out, SMALL)
    manifest = read_manifest(out)
    assert manifest is not None
    return out, manifest, list(iter_records(out))


def _incident(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next(i for i in manifest["incidents"] if i["name"] == name)


def test_same_seed_same_bytes(tmp_path: Path, history: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    first = history[0]
    generate(tmp_path, SMALL)
    a = {p.relative_to(first): p.read_bytes() for p in delivery_files(first)}
    b = {p.relative_to(tmp_path): p.read_bytes() for p in delivery_files(tmp_path)}
    assert len(a) == history[1]["files"]
    assert a == b


def test_another_seed_other_ids(tmp_path: Path, history: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    generate(tmp_path, Params(**{**SMALL.__dict__, "seed": 8}))
    ids_a = {r["eventID"] for r in history[2]}
    ids_b = {r["eventID"] for r in iter_records(tmp_path)}
    assert len(ids_b) == 6000
    assert not ids_a & ids_b


def test_exact_count_and_read_only_share(history: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    _, manifest, recs = history
    assert len(recs) == 6000 == manifest["records"]
    read_only = sum(1 for r in recs if r["readOnly"] is True)
    assert read_only == 5400  # exactly 90 % by construction
    assert 0.88 <= read_only / len(recs) <= 0.92
    assert len({r["eventID"] for r in recs}) == 6000  # eventIDs are unique uuids
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", r["eventID"])
               for r in recs[:500])


def test_files_follow_the_s3_layout(history: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    out, manifest, _ = history
    files = delivery_files(out)
    assert len(files) == manifest["files"]
    accounts = {a["account_id"] for a in manifest["accounts"]}
    assert accounts == {"318274650192", "527381946027", "640192837465", "759302184756"}
    regions = set()
    for path in files:
        m = KEY.match(path.relative_to(out).as_posix())
        assert m, path
        assert m["acc"] in accounts
        regions.add(m["region"])
        body = json.loads(gzip.decompress(path.read_bytes()))
        assert list(body) == ["Records"] and body["Records"]
        for rec in body["Records"]:
            assert rec["recipientAccountId"] == m["acc"]
            assert rec["awsRegion"] == m["region"]
            # a file is delivered after the calls it holds (5 minutes after its window closes)
            assert rec["eventTime"][:16].replace("-", "").replace(":", "") < m["stamp"][:13]
    assert regions == {"us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"}


def test_records_have_cloudtrails_shape(history: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    recs = history[2]
    for rec in recs:
        assert rec["eventVersion"] == "1.09"
        assert rec["managementEvent"] is True and rec["eventCategory"] == "Management"
        assert rec["eventSource"].endswith(".amazonaws.com")
        assert re.fullmatch(r"2024-05-\d\dT\d\d:\d\d:\d\dZ", rec["eventTime"])
        assert "2024-05-14T00:00:00Z" <= rec["eventTime"] < "2024-05-22T00:00:00Z"
    run = next(r for r in recs if r["eventName"] == "RunInstances" and "launchTemplate" in r["requestParameters"])
    assert run["userIdentity"]["invokedBy"] == "autoscaling.amazonaws.com"
    assert "instanceType" not in run["requestParameters"]  # hidden in the launch template, as in real records
    assert run["responseElements"]["instancesSet"]["items"][0]["instanceType"] == "m5.large"
    failed = [r for r in recs if r.get("errorCode")]
    assert failed and all(r["eventName"] == "RunInstances" and r["responseElements"] is None for r in failed)


def _launches(recs: list[dict[str, Any]], event_ids: list[str]) -> list[dict[str, Any]]:
    wanted = set(event_ids)
    return [r for r in recs if r["eventID"] in wanted and r["eventName"] == "RunInstances"]


def _types(runs: list[dict[str, Any]]) -> Counter[str]:
    return Counter(i["instanceType"] for r in runs for i in r["responseElements"]["instancesSet"]["items"])


def test_gpu_burst_is_four_launches_by_carol(history: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    _, manifest, recs = history
    inc = _incident(manifest, "gpu_burst")
    assert (inc["account_id"], inc["actor"], inc["region"]) == ("640192837465", "carol", "us-east-1")
    runs = _launches(recs, inc["event_ids"])
    assert len(runs) == inc["run_instances"] == 4
    assert _types(runs) == {"p4d.24xlarge": 6, "p5.48xlarge": 1}
    assert {r["userIdentity"]["arn"] for r in runs} == {"arn:aws:iam::640192837465:user/carol"}
    # carol is a normal user: she launched an ordinary instance before, and nobody ever ran a p-family one
    assert any(r["userIdentity"].get("userName") == "carol" and r["eventID"] not in inc["event_ids"]
               for r in recs if r["eventName"] == "RunInstances")
    every = _types([r for r in recs if r["eventName"] == "RunInstances" and not r.get("errorCode")])
    assert every["p4d.24xlarge"] == 6 and every["p5.48xlarge"] == 1


def test_new_region_is_two_launches_in_an_unused_region(
    history: tuple[Path, dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, manifest, recs = history
    inc = _incident(manifest, "new_region")
    runs = _launches(recs, inc["event_ids"])
    assert len(runs) == inc["run_instances"] == 2
    assert _types(runs) == {"c5.4xlarge": 16}
    assert {r["awsRegion"] for r in runs} == {"ap-southeast-2"}
    others = [r for r in recs if r["awsRegion"] == "ap-southeast-2" and r["eventID"] not in inc["event_ids"]]
    assert others == []  # nobody else ever used the region
    assert {r["sourceIPAddress"] for r in runs} == {"185.220.101.34"}


def test_root_nat_gateway_and_rds_have_no_launches(
    history: tuple[Path, dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, manifest, recs = history
    nat = _incident(manifest, "root_nat_gateway")
    assert nat["run_instances"] == 0 and _launches(recs, nat["event_ids"]) == []
    nat_recs = [r for r in recs if r["eventID"] in nat["event_ids"]]
    assert [r["eventName"] for r in nat_recs] == ["AllocateAddress", "CreateNatGateway"]
    assert {r["userIdentity"]["type"] for r in nat_recs} == {"Root"}
    gw = nat_recs[1]["responseElements"]["CreateNatGatewayResponse"]["natGateway"]
    assert gw["natGatewayId"].startswith("nat-") and gw["state"] == "pending"
    assert sum(1 for r in recs if r["eventName"] == "CreateNatGateway") == 1

    rds = _incident(manifest, "rds_multi_az")
    db = [r for r in recs if r["eventID"] in rds["event_ids"]]
    assert [r["eventName"] for r in db] == ["CreateDBInstance"]
    resp = db[0]["responseElements"]
    assert (resp["dBInstanceClass"], resp["multiAZ"], resp["allocatedStorage"], resp["iops"]) == (
        "db.r5.8xlarge", True, 2000, 20000)
    normal_dbs = [r for r in recs if r["eventName"] == "CreateDBInstance" and r["eventID"] not in rds["event_ids"]]
    assert normal_dbs and {r["responseElements"]["dBInstanceClass"] for r in normal_dbs} == {"db.t3.medium"}


def test_leak_instances_are_never_terminated(history: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    _, manifest, recs = history
    inc = _incident(manifest, "leak")
    runs = _launches(recs, inc["event_ids"])
    assert len(runs) == inc["run_instances"] == 5
    assert _types(runs) == {"m5.2xlarge": 20}
    leaked = {i["instanceId"] for r in runs for i in r["responseElements"]["instancesSet"]["items"]}
    terminated = {i["instanceId"] for r in recs if r["eventName"] == "TerminateInstances"
                  for i in r["requestParameters"]["instancesSet"]["items"]}
    assert len(leaked) == 20 and not leaked & terminated
    # every normal launch made before the last day is terminated: the leak stands out
    incident_ids = {e for i in manifest["incidents"] for e in i["event_ids"]}
    normal = {i["instanceId"] for r in recs if r["eventName"] == "RunInstances" and not r.get("errorCode")
              and r["eventID"] not in incident_ids and r["eventTime"] < "2024-05-21"
              for i in r["responseElements"]["instancesSet"]["items"]}
    assert normal and normal <= terminated


def test_too_few_records_is_refused_with_the_minimum(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match=r"use --records \d+ or more"):
        generate(tmp_path, Params(days=21, accounts=4, records=2000))


def test_ensure_history_reuses_a_matching_history(tmp_path: Path) -> None:
    params = Params(days=7, accounts=1, records=1500, seed=3)
    first = ensure_history(tmp_path, params)
    stamp = {p: p.stat().st_mtime_ns for p in delivery_files(tmp_path)}
    again = ensure_history(tmp_path, params)
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in delivery_files(tmp_path)} == stamp
    other = ensure_history(tmp_path, Params(days=7, accounts=1, records=1600, seed=3))
    assert other["records"] == 1600 and len(list(iter_records(tmp_path))) == 1600


@given(st.integers(0, 10_000), st.lists(st.floats(0.01, 100.0), min_size=1, max_size=60))
def test_allocate_is_exact_and_fair(total: int, weights: list[float]) -> None:
    counts = _allocate(total, weights)
    assert sum(counts) == total
    wsum = sum(weights)
    assert all(abs(c - total * w / wsum) < 1.0 + 1e-9 for c, w in zip(counts, weights, strict=True))
