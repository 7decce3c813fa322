"""Real CloudTrail records from the public corpus (ops/corpus/cloudtrail) priced end to end.

invictus-ir: a live account during a Stratus Red Team run (us-east-1, 2023-07-10) — t3.micro instances, a
p2.xlarge launch that fails on its vCPU limit, NAT gateways, Elastic IPs, EBS volumes and snapshots, an RDS
instance, all torn down again. stackstate / cloud-custodian: single records of the other cost-relevant calls.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import dumps, loads
from schemas.events import Rejected
from streams.ledger.pure import apply, changes, running_cost_per_hour
from streams.normalize.pure import normalize, observations
from tests.unit.test_normalize_support import CORPUS, entry, events_of, fold, prices, read_records

H = 730
INVICTUS = CORPUS / "invictus-ir_aws_dataset"
STACKSTATE = CORPUS / "stackstate_aws-topology"
CUSTODIAN = CORPUS / "cloud-custodian_cwe"


def _invictus() -> list[dict[str, Any]]:
    return [r for path in sorted(INVICTUS.glob("*.json")) for r in read_records(path)]


def _one(path: Path) -> dict[str, Any]:
    [record] = read_records(path)
    return record


def test_invictus_priced_events_and_dollar_figures() -> None:
    records = _invictus()
    assert len(records) == 2900
    priced = {}
    for record in records:
        result = normalize(entry(record), prices())
        assert not isinstance(result, Rejected), result.reason
        for event in result:
            priced[(record["eventName"], event.resource_ids)] = event
    expected = {
        ("RunInstances", ("i-0dbc91f429e48eeed",)): 0.0104,  # t3.micro
        ("RunInstances", ("i-05c30218156bcc246",)): 0.0104,
        ("CreateNatGateway", ("nat-03575abbac42080d9",)): 0.045,  # XML-style CreateNatGatewayResponse wrapper
        ("CreateNatGateway", ("nat-0dd264ee104155137",)): 0.045,
        ("AllocateAddress", ("eipalloc-08a083beb7e83dbc0",)): 0.005,
        ("AllocateAddress", ("eipalloc-04cbfdaf4b48e92d5",)): 0.005,
        ("AllocateAddress", ("eipalloc-09d58d8a1fc361502",)): 0.005,
        ("CreateVolume", ("vol-0a2e548958718390d",)): 1 * 0.10 / H,  # 1 GiB gp2 ("size": "1" is a string)
        ("CreateVolume", ("vol-0fc2e34e74650e145",)): 1 * 0.10 / H,
        ("CreateSnapshot", ("snap-01ee6be9876379b3b",)): 1 * 0.05 / H,
        ("CreateSnapshot", ("snap-083d3b857c13988bc",)): 1 * 0.05 / H,
        # db.t3.micro MySQL + 10 GiB gp2
        ("CreateDBInstance", ("arn:aws:rds:us-east-1:123837392027:db:terraform-20230710121504061500000001",)): (
            0.017 + 10 * 0.115 / H
        ),
    }
    assert set(priced) == set(expected)
    for key, hourly in expected.items():
        assert priced[key].hourly_cost == pytest.approx(hourly), key
        assert priced[key].cost_status == "priced"
        assert priced[key].actor.key == "arn:aws:iam::123837392027:user/bert-jan"
    assert sum(e.hourly_cost for e in priced.values()) == pytest.approx(
        2 * 0.0104 + 2 * 0.045 + 3 * 0.005 + 2 * 0.10 / H + 2 * 0.05 / H + 0.017 + 10 * 0.115 / H
    )


def test_invictus_failed_launches_are_counted_not_priced() -> None:
    """The p2.xlarge x (1..10) launches fail with Client.VcpuLimitExceeded: no cost, two failed attempts."""
    counted: Counter[tuple[str, str]] = Counter()
    for record in _invictus():
        result = normalize(entry(record), prices())
        assert not isinstance(result, Rejected)
        counted.update(observations(entry(record), result))
        if record.get("requestParameters") and record["requestParameters"].get("instanceType") == "p2.xlarge":
            assert record["errorCode"] == "Client.VcpuLimitExceeded" and result == []
    assert counted == Counter(
        {
            ("failed_create_attempts", "Client.InvalidParameterValue"): 4,
            ("failed_create_attempts", "Client.VcpuLimitExceeded"): 2,
        }
    )


def test_invictus_ledger_opens_and_closes_everything() -> None:
    """Replayed in eventTime order, all 12 resources open and are torn down again: nothing burns at the end."""
    records = sorted(_invictus(), key=lambda r: r["eventTime"])
    ledger: dict = {}
    burn = []  # (eventTime, running $/h after the record)
    for record in records:
        e = entry(record)
        result = normalize(e, prices(), ledger)
        assert not isinstance(result, Rejected)
        for change in changes(e, result):
            key = (change.tenant, change.account_id, change.resource_id)
            ledger[key] = apply(ledger.get(key), change)
        burn.append((record["eventTime"], running_cost_per_hour(ledger)))
    assert len(ledger) == 12
    assert Counter(r.state for r in ledger.values()) == Counter({"closed": 12})
    assert burn[-1][1] == 0.0
    # peak at 12:07:15: 2 NAT gateways + 3 Elastic IPs + 2 t3.micro running at once
    peak_time, peak = max(burn, key=lambda b: b[1])
    assert peak_time == "2023-07-10T12:07:15Z"
    assert peak == pytest.approx(2 * 0.045 + 3 * 0.005 + 2 * 0.0104)


def test_stackstate_run_instances_eu_west_1() -> None:
    instance, volume = events_of(_one(STACKSTATE / "ec2" / "cloudtrail" / "run_instances.json"))
    assert (instance.instance_type, instance.region, instance.hourly_cost) == ("t2.micro", "eu-west-1", 0.0126)
    assert instance.resource_ids == ("i-0f70dba7ea83d6dec",)
    # EBS prices exist for us-east-1 only: the 8 GiB gp2 root volume in eu-west-1 is the labelled regional estimate,
    # us-east-1 gp2 0.10/GB-month x eu-west-1 factor 1.115 (median EC2 price ratio), never 0 and never "priced"
    assert (volume.quantity, volume.unpriced_reason) == (8, None)
    assert volume.hourly_cost == pytest.approx(8 * 0.10 * 1.115 / H)
    assert (volume.cost_status, volume.pricing["basis"], volume.pricing["factor"]) == (
        "estimated_fallback",
        "regional_fallback",
        1.115,
    )


def test_stackstate_modify_instance_type_and_start() -> None:
    modify = _one(STACKSTATE / "ec2" / "cloudtrail" / "modify_instance_attribute.json")
    [event] = events_of(modify)
    assert (event.instance_type, event.hourly_cost) == ("t4g.small", 0.0184)
    start = _one(STACKSTATE / "ec2" / "cloudtrail" / "start_instances.json")
    [event] = events_of(start)
    assert (event.resource_ids, event.unpriced_reason) == (("i-1234567890123456",), "unknown_instance_type")


def test_stackstate_redshift_elb_dynamodb_rds() -> None:
    [redshift] = events_of(_one(STACKSTATE / "redshift" / "cloudtrail" / "create_cluster.json"))
    assert (redshift.instance_type, redshift.quantity, redshift.hourly_cost) == ("dc2.large", 1, 0.30)
    assert redshift.resource_ids == ("arn:aws:redshift:eu-west-1:548105126730:cluster:redshift-cluster-1",)
    [classic] = events_of(_one(STACKSTATE / "elb" / "cloudtrail" / "create_loadbalancer.json"))
    [application] = events_of(_one(STACKSTATE / "elbv2" / "cloudtrail" / "create_loadbalancer.json"))
    # ELB prices are us-east-1 only: eu-west-1 is estimated as CLB 0.025/h and ALB 0.0225/h x factor 1.115
    assert (classic.family, classic.hourly_cost, classic.cost_status) == (
        "classic",
        pytest.approx(0.025 * 1.115),
        "estimated_fallback",
    )
    assert (application.family, application.hourly_cost, application.cost_status) == (
        "application",
        pytest.approx(0.0225 * 1.115),
        "estimated_fallback",
    )
    assert application.pricing["base_basis"] == "hourly_excluding_lcu"
    assert application.resource_ids == (
        "arn:aws:elasticloadbalancing:eu-west-1:731070500579:loadbalancer/app/myfirstloadbalancer/90dd512583d2d7e9",
    )
    assert events_of(_one(STACKSTATE / "dynamodb" / "cloudtrail" / "create_table.json")) == []  # PAY_PER_REQUEST
    [aurora_instance] = events_of(_one(STACKSTATE / "rds" / "cloudtrail" / "create_instance.json"))
    assert (aurora_instance.instance_type, aurora_instance.hourly_cost) == ("db.t2.small", 0.044)
    assert aurora_instance.resource_ids == ("arn:aws:rds:eu-west-1:731070500579:db:stackstatedatabse",)
    [aurora_cluster] = events_of(_one(STACKSTATE / "rds" / "cloudtrail" / "create_cluster.json"))
    assert (aurora_cluster.resource_type, aurora_cluster.unpriced_reason) == ("rds_cluster", "usage_based")
    for path in ("autoscaling/cloudtrail/create_autoscaling_group.json", "ecs/cloudtrail/create_cluster.json"):
        assert events_of(_one(STACKSTATE / path)) == []


def test_stackstate_ledger_sequences() -> None:
    ec2 = STACKSTATE / "ec2" / "cloudtrail"
    run, stop, terminate = (_one(ec2 / f"{n}.json") for n in ("run_instances", "stop_instances", "terminate_instances"))
    # As captured, the stop/terminate records sit in another (anonymised) account than the launch: the ledger
    # shows what it knows for each — a running t2.micro, and a closed instance it never saw open.
    ledger, _ = fold([run, stop, terminate])
    launched = ledger[("acme", "731070500579", "i-0f70dba7ea83d6dec")]
    assert (launched.state, launched.hourly_cost) == ("running", 0.0126)
    unseen = ledger[("acme", "548105126730", "i-0f70dba7ea83d6dec")]
    assert (unseen.state, unseen.hourly_cost, unseen.attributes["seen_open"]) == ("closed", None, False)
    # Same account (as in a real trail): run -> stop -> terminate on one row
    run["recipientAccountId"] = "548105126730"
    ledger, _ = fold([run, stop])
    [row] = ledger.values()
    assert (row.state, row.hourly_cost, row.burning_per_hour) == ("stopped", 0.0126, 0.0)
    ledger, _ = fold([run, stop, terminate])
    [row] = ledger.values()
    assert (row.state, row.hourly_cost, row.instance_type, row.burning_per_hour) == ("closed", 0.0126, "t2.micro", 0.0)
    redshift = STACKSTATE / "redshift" / "cloudtrail"
    ledger, _ = fold([_one(redshift / "create_cluster.json"), _one(redshift / "delete_cluster.json")])
    [row] = ledger.values()
    assert (row.resource_type, row.state, row.hourly_cost) == ("redshift_cluster", "closed", 0.30)
    dynamodb = STACKSTATE / "dynamodb" / "cloudtrail"
    ledger, _ = fold([_one(dynamodb / "create_table.json"), _one(dynamodb / "delete_table.json")])
    [row] = ledger.values()
    assert (row.state, row.hourly_cost, row.attributes["billing_mode"]) == ("closed", None, "PAY_PER_REQUEST")
    elbv2 = STACKSTATE / "elbv2" / "cloudtrail"
    ledger, _ = fold([_one(elbv2 / "create_loadbalancer.json"), _one(elbv2 / "delete_loadbalancer.json")])
    [row] = ledger.values()
    assert (row.resource_type, row.state) == ("load_balancer", "closed")


def test_cloud_custodian_records() -> None:
    asg, asg_volumes_a, asg_volumes_b = events_of(_one(CUSTODIAN / "event-cloud-trail-run-instances.json"))
    assert (asg.instance_type, asg.quantity, asg.hourly_cost) == ("t2.micro", 2, pytest.approx(2 * 0.0138))
    assert asg.actor.key == "service:autoscaling.amazonaws.com"  # Root acting through legacy Auto Scaling
    # us-west-1 EBS: two instances x 8 GiB gp2 each, estimated at 0.10/GB-month x us-west-1 factor 1.1667
    for volume in (asg_volumes_a, asg_volumes_b):
        assert (volume.quantity, volume.cost_status) == (16, "estimated_fallback")
        assert volume.hourly_cost == pytest.approx(16 * 0.10 * 1.1667 / H)
    instance, root_volume = events_of(_one(CUSTODIAN / "event-cloud-trail-run-instance-creator.json"))
    assert (instance.instance_type, instance.hourly_cost) == ("m3.medium", 0.067)
    assert root_volume.hourly_cost == pytest.approx(8 * 0.10 / H)  # 8 GiB gp2; ephemeral0 and noDevice skipped
    [volume] = events_of(_one(CUSTODIAN / "event-cloud-trail-create-volume.json"))
    assert (volume.family, volume.quantity, volume.hourly_cost) == ("standard", 100, pytest.approx(100 * 0.05 / H))
    [db] = events_of(_one(CUSTODIAN / "event-cloud-trail-create-db.json"))
    # "engine": "MySQL", 5 GiB magnetic ("standard") storage
    assert (db.instance_type, db.hourly_cost) == ("db.t2.micro", pytest.approx(0.017 + 5 * 0.10 / H))
    assert events_of(_one(CUSTODIAN / "event-cloud-trail-hsm-create-cluster.json")) == []  # cloudhsm CreateCluster


def test_no_corpus_record_raises_or_prices_at_zero() -> None:
    rejected, events = 0, 0
    for path in sorted(CORPUS.rglob("*.json")):
        try:
            records = read_records(path)
        except ValueError:
            continue
        for record in records:
            result = normalize(entry(record), prices())
            if isinstance(result, Rejected):
                rejected += 1
                continue
            for event in result:
                events += 1
                assert event.hourly_cost is None or event.hourly_cost > 0
                assert (event.hourly_cost is None) == (event.cost_status == "unpriced")
                assert loads(dumps(event))["event_id"] == event.event_id  # JSON-safe for projections and the wire
    assert rejected == 0 and events > 40
