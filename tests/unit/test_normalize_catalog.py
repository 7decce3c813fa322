"""One test per cost-catalog entry, with the $/hour written as arithmetic on the snapshot's prices.

Prices used (snapshot 2026-07-20, us-east-1 unless said): m5.large 0.096, c5.large 0.085, t3.micro 0.0104,
EBS gp2 0.10 / gp3 0.08 / io1 0.125 / io2 0.125 / st1 0.045 / sc1 0.015 / standard 0.05 per GB-month,
io1/io2 0.065 per IOPS-month, gp3 extra IOPS 0.005 and extra MiB/s 0.04 per month, snapshots 0.05 per GB-month,
public IPv4 0.005/h, NAT 0.045/h, interface endpoint 0.01/h per AZ, ALB/NLB 0.0225/h, CLB 0.025/h,
RDS db.m5.large MySQL 0.171, db.r6g.large PostgreSQL 0.225, db.t3.micro MySQL 0.017 (us-west-1 0.022),
RDS storage gp2 0.115 / io1 0.125 per GB-month + io1 0.10 per IOPS-month, cache.m6g.large 0.149,
cache.r6g.large 0.206, ra3.4xlarge 3.26, c4.2xlarge.search 0.587, OpenSearch gp2 0.135 per GB-month, EKS 0.10,
ml.g4dn.xlarge 0.7364, ml.p3.2xlarge 3.825, DynamoDB RCU 0.00013 / WCU 0.00065 per hour, kafka.m5.large 0.21,
MSK storage 0.10 per GB-month. A month is 730 hours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.events import Rejected, Resource
from streams.normalize.catalog import RESOURCE_TYPES
from streams.normalize.pure import normalize
from streams.prices.table import PriceTable
from tests.unit.test_normalize_support import TENANT, call, entry, events_of, fold, prices

H = 730
ACCOUNT = "111122223333"
EC2 = "ec2.amazonaws.com"
RDS = "rds.amazonaws.com"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def known(*rows: Resource) -> dict[tuple[str, str, str], Resource]:
    return {(r.tenant, r.account_id, r.resource_id): r for r in rows}


def row(resource_id: str, resource_type: str, state: str = "running", **kw: Any) -> Resource:
    return Resource(
        tenant=TENANT,
        account_id=ACCOUNT,
        resource_id=resource_id,
        resource_type=resource_type,
        region=kw.pop("region", "us-east-1"),
        state=state,
        hourly_cost=kw.pop("hourly_cost", None),
        opened_at=T0,
        changed_at=T0,
        **kw,
    )


def items(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(elements)}


def instance(instance_id: str, itype: str, **extra: Any) -> dict[str, Any]:
    return {"instanceId": instance_id, "instanceType": itype, "placement": {"tenancy": "default"}, **extra}


# -- EC2 instances -----------------------------------------------------------------------------------------------
def test_run_instances_counts_every_item_of_the_response() -> None:
    """A launch template hides instanceType in the request; the response has 3 m5.large."""
    record = call(
        EC2,
        "RunInstances",
        {"instancesSet": items({"minCount": 3, "maxCount": 3})},
        {"instancesSet": items(*(instance(f"i-{n}", "m5.large") for n in range(3)))},
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(3 * 0.096)
    assert (event.quantity, event.resource_ids, event.family) == (3, ("i-0", "i-1", "i-2"), "m5")


def test_run_instances_with_mixed_types_gives_one_event_per_type() -> None:
    record = call(
        EC2,
        "RunInstances",
        {"instanceType": "m5.large"},
        {"instancesSet": items(instance("i-a", "m5.large"), instance("i-b", "c5.large"), instance("i-c", "m5.large"))},
    )
    m5, c5 = events_of(record)
    assert (m5.instance_type, m5.resource_ids, m5.hourly_cost) == ("m5.large", ("i-a", "i-c"), pytest.approx(2 * 0.096))
    assert (c5.instance_type, c5.resource_ids, c5.hourly_cost) == ("c5.large", ("i-b",), 0.085)
    assert [m5.ordinal, c5.ordinal] == [0, 1]


def test_run_instances_without_response_falls_back_to_the_request_min_count() -> None:
    record = call(
        EC2, "RunInstances", {"instanceType": "t3.micro", "instancesSet": items({"minCount": 2, "maxCount": 5})}, None
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(2 * 0.0104)
    assert event.resource_ids == ()
    assert event.attributes["max_count"] == 5 and event.attributes["count_from"] == "request_min_count"


def test_run_instances_launch_template_without_response_is_unpriced() -> None:
    record = call(EC2, "RunInstances", {"launchTemplate": {"launchTemplateId": "lt-1"}}, None)
    [event] = events_of(record)
    assert (event.hourly_cost, event.unpriced_reason) == (None, "unknown_instance_type")


def test_spot_is_priced_at_the_on_demand_ceiling() -> None:
    by_request = call(
        EC2,
        "RunInstances",
        {"instanceType": "m5.large", "instanceMarketOptions": {"marketType": "spot"}},
        {"instancesSet": items(instance("i-s1", "m5.large"), instance("i-s2", "m5.large"))},
    )
    by_item = call(
        EC2, "RunInstances", {}, {"instancesSet": items(instance("i-s3", "m5.large", spotInstanceRequestId="sir-1"))}
    )
    [a] = events_of(by_request)
    [b] = events_of(by_item)
    assert a.hourly_cost == pytest.approx(2 * 0.096) and b.hourly_cost == 0.096
    for event in (a, b):
        assert event.attributes["spot"] is True
        assert event.pricing["basis"] == "on_demand_ceiling"
        assert event.cost_status == "priced"


def test_dedicated_tenancy_is_an_estimate_and_host_tenancy_unpriced() -> None:
    dedicated = call(
        EC2,
        "RunInstances",
        {},
        {"instancesSet": items(instance("i-d", "m5.large", placement={"tenancy": "dedicated"}))},
    )
    host = call(
        EC2, "RunInstances", {}, {"instancesSet": items(instance("i-h", "m5.large", placement={"tenancy": "host"}))}
    )
    [d] = events_of(dedicated)
    [h] = events_of(host)
    assert (d.hourly_cost, d.cost_status, d.pricing["basis"]) == (0.096, "estimated_fallback", "shared_tenancy_floor")
    assert d.attributes["tenancy"] == "dedicated"
    assert (h.hourly_cost, h.cost_status, h.unpriced_reason) == (None, "unpriced", "dedicated_host")


def test_windows_instances_are_a_linux_floor_estimate() -> None:
    record = call(EC2, "RunInstances", {}, {"instancesSet": items(instance("i-w", "m5.large", platform="windows"))})
    [event] = events_of(record)
    assert (event.hourly_cost, event.cost_status, event.pricing["basis"]) == (
        0.096,
        "estimated_fallback",
        "linux_price_floor",
    )


def test_block_devices_become_volume_events_after_the_instances() -> None:
    mapping = items(
        {"deviceName": "/dev/xvda", "ebs": {"volumeSize": 8, "volumeType": "gp3", "deleteOnTermination": True}},
        {"deviceName": "/dev/sdf", "ebs": {"volumeSize": 100, "volumeType": "io2", "iops": 4000}},
        {"deviceName": "/dev/sdb", "virtualName": "ephemeral0"},
        {"deviceName": "/dev/sdc", "noDevice": {}},
    )
    record = call(
        EC2,
        "RunInstances",
        {"instanceType": "m5.large", "blockDeviceMapping": mapping},
        {"instancesSet": items(instance("i-1", "m5.large"), instance("i-2", "m5.large"))},
    )
    inst, root, data = events_of(record)
    assert [inst.ordinal, root.ordinal, data.ordinal] == [0, 1, 2]
    assert inst.hourly_cost == pytest.approx(2 * 0.096)
    assert (root.resource_type, root.quantity, root.family) == ("ebs_volume", 16, "gp3")
    assert root.hourly_cost == pytest.approx(2 * 8 * 0.08 / H)
    assert data.hourly_cost == pytest.approx((2 * 100 * 0.125 + 2 * 4000 * 0.065) / H)
    assert data.attributes["instance_ids"] == ["i-1", "i-2"] and data.attributes["device_name"] == "/dev/sdf"
    assert root.attributes["delete_on_termination"] is True
    assert root.resource_ids == ()  # the launch response does not name the volumes yet


def test_auto_scaling_launches_are_priced_and_group_calls_are_not() -> None:
    identity = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
        "accountId": ACCOUNT,
        "invokedBy": "autoscaling.amazonaws.com",
        "sessionContext": {"sessionIssuer": {}},
    }
    launch = call(EC2, "RunInstances", {}, {"instancesSet": items(instance("i-asg", "m5.large"))}, identity=identity)
    [event] = events_of(launch)
    assert event.hourly_cost == 0.096 and event.actor.key == "service:autoscaling.amazonaws.com"
    asg = call("autoscaling.amazonaws.com", "CreateAutoScalingGroup", {"desiredCapacity": 10, "maxSize": 20}, None)
    nodegroup = call("eks.amazonaws.com", "CreateNodegroup", {"scalingConfig": {"desiredSize": 5}}, {})
    assert events_of(asg) == [] and events_of(nodegroup) == []


def test_start_instances_prices_from_the_ledger() -> None:
    record = call(
        EC2,
        "StartInstances",
        {"instancesSet": items({"instanceId": "i-stopped"}, {"instanceId": "i-new"}, {"instanceId": "i-up"})},
        {"instancesSet": items({"instanceId": "i-stopped"}, {"instanceId": "i-new"}, {"instanceId": "i-up"})},
    )
    ledger = known(
        row("i-stopped", "ec2_instance", "stopped", hourly_cost=0.192, instance_type="m5.xlarge"),
        row("i-up", "ec2_instance", "running", hourly_cost=0.096, instance_type="m5.large"),
    )
    resumed, unknown = events_of(record, known=ledger)
    assert (resumed.resource_ids, resumed.hourly_cost, resumed.instance_type) == (("i-stopped",), 0.192, "m5.xlarge")
    assert (unknown.resource_ids, unknown.hourly_cost, unknown.unpriced_reason) == (
        ("i-new",),
        None,
        "unknown_instance_type",
    )
    # i-up is already running: nothing starts billing


def test_modify_instance_attribute_type_change_carries_the_previous_rate() -> None:
    record = call(EC2, "ModifyInstanceAttribute", {"instanceId": "i-1", "instanceType": {"value": "m5.xlarge"}}, {})
    ledger = known(row("i-1", "ec2_instance", "stopped", hourly_cost=0.096, instance_type="m5.large"))
    [event] = events_of(record, known=ledger)
    assert (event.instance_type, event.hourly_cost) == ("m5.xlarge", 0.192)
    assert event.attributes["previous_hourly_cost"] == 0.096
    assert event.attributes["previous_instance_type"] == "m5.large"
    old_form = call(
        EC2, "ModifyInstanceAttribute", {"instanceId": "i-2", "attribute": "instanceType", "value": "c5.large"}
    )
    [event] = events_of(old_form)
    assert (event.hourly_cost, event.attributes["previous_hourly_cost"]) == (0.085, None)
    protection = call(EC2, "ModifyInstanceAttribute", {"instanceId": "i-1", "disableApiTermination": {"value": True}})
    assert events_of(protection) == []


# -- EBS ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "hourly"),
    [
        ({"volumeType": "gp2", "size": "100", "iops": 300}, 100 * 0.10 / H),
        (
            {"volumeType": "gp3", "size": 100, "iops": 6000, "throughput": 250},
            (100 * 0.08 + 3000 * 0.005 + 125 * 0.04) / H,
        ),
        ({"volumeType": "io1", "size": 500, "iops": 10000}, (500 * 0.125 + 10000 * 0.065) / H),
        ({"volumeType": "io2", "size": 16000, "iops": 64000}, (16000 * 0.125 + 64000 * 0.065) / H),
        ({"volumeType": "st1", "size": 1000}, 1000 * 0.045 / H),
        ({"volumeType": "sc1", "size": 1000}, 1000 * 0.015 / H),
        ({"volumeType": "standard", "size": 10}, 10 * 0.05 / H),
    ],
)
def test_create_volume_prices_size_iops_and_throughput(spec: dict[str, Any], hourly: float) -> None:
    record = call(
        EC2, "CreateVolume", {"size": spec["size"], "volumeType": spec["volumeType"]}, {"volumeId": "vol-1", **spec}
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(hourly)
    assert (event.resource_type, event.resource_ids, event.family) == ("ebs_volume", ("vol-1",), spec["volumeType"])


def test_io2_above_32000_iops_is_flagged_as_a_ceiling() -> None:
    record = call(EC2, "CreateVolume", {}, {"volumeId": "vol-2", "volumeType": "io2", "size": 100, "iops": 64000})
    [event] = events_of(record)
    assert event.pricing["basis"] == "io2_tier1_ceiling"


def test_create_volume_unknowns_are_unpriced() -> None:
    odd_type = call(EC2, "CreateVolume", {}, {"volumeId": "vol-3", "volumeType": "gp9", "size": 10})
    # cn-north-1: no USD prices and no regional factor, so not even an estimate (eu-west-1 is estimated now:
    # tests/unit/test_prices_fallback.py)
    elsewhere = call(
        EC2, "CreateVolume", {}, {"volumeId": "vol-4", "volumeType": "gp3", "size": 10}, region="cn-north-1"
    )
    no_size = call(EC2, "CreateVolume", {"snapshotId": "snap-1"}, {"volumeId": "vol-5", "volumeType": "gp3"})
    assert [(e.hourly_cost, e.unpriced_reason) for r in (odd_type, elsewhere, no_size) for e in events_of(r)] == [
        (None, "unknown_sku"),
        (None, "unknown_region"),
        (None, "unknown_volume_size"),
    ]


def test_modify_volume_prices_the_target_and_keeps_the_previous_rate() -> None:
    ledger = known(
        row(
            "vol-9",
            "ebs_volume",
            hourly_cost=100 * 0.10 / H,
            attributes={"volume_type": "gp2", "size_gib": 100, "iops": 300},
        )
    )
    record = call(
        EC2,
        "ModifyVolume",
        {"ModifyVolumeRequest": {"VolumeId": "vol-9", "VolumeType": "gp3", "Size": 200}},
        {
            "ModifyVolumeResponse": {
                "volumeModification": {
                    "volumeId": "vol-9",
                    "targetSize": 200,
                    "targetVolumeType": "gp3",
                    "targetIops": 3000,
                    "targetThroughput": 125,
                }
            }
        },
    )
    [event] = events_of(record, known=ledger)
    assert event.hourly_cost == pytest.approx(200 * 0.08 / H)
    assert event.attributes["previous_hourly_cost"] == pytest.approx(100 * 0.10 / H)
    size_only = call(EC2, "ModifyVolume", {"volumeId": "vol-9", "size": 150})
    [event] = events_of(size_only, known=ledger)
    assert event.hourly_cost == pytest.approx(150 * 0.10 / H)  # type from the ledger


def test_create_snapshot_is_priced_at_the_full_volume_size() -> None:
    record = call(
        EC2, "CreateSnapshot", {"volumeId": "vol-1"}, {"snapshotId": "snap-1", "volumeId": "vol-1", "volumeSize": "50"}
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(50 * 0.05 / H)
    assert (event.resource_type, event.resource_ids, event.pricing["basis"]) == (
        "ebs_snapshot",
        ("snap-1",),
        "full_volume_size_ceiling",
    )


# -- network ------------------------------------------------------------------------------------------------------
def test_allocate_address_bills_public_ipv4_unless_byoip() -> None:
    amazon = call(
        EC2,
        "AllocateAddress",
        {"domain": "vpc"},
        {"allocationId": "eipalloc-1", "publicIp": "3.3.3.3", "publicIpv4Pool": "amazon"},
    )
    byoip = call(
        EC2, "AllocateAddress", {"domain": "vpc"}, {"allocationId": "eipalloc-2", "publicIpv4Pool": "ipv4pool-ec2-1"}
    )
    [event] = events_of(amazon)
    assert (event.resource_type, event.resource_ids, event.hourly_cost) == ("elastic_ip", ("eipalloc-1",), 0.005)
    assert events_of(byoip) == []


def test_nat_gateway_in_both_response_shapes() -> None:
    xml = call(EC2, "CreateNatGateway", {}, {"CreateNatGatewayResponse": {"natGateway": {"natGatewayId": "nat-1"}}})
    flat = call(EC2, "CreateNatGateway", {}, {"natGateway": {"natGatewayId": "nat-2"}}, region="eu-west-1")
    [a] = events_of(xml)
    [b] = events_of(flat)
    assert (a.resource_ids, a.hourly_cost) == (("nat-1",), 0.045)
    assert (b.resource_ids, b.hourly_cost) == (("nat-2",), 0.048)  # eu-west-1 NAT rate


def test_interface_endpoint_bills_per_az_and_gateway_endpoints_are_free() -> None:
    interface = call(
        EC2,
        "CreateVpcEndpoint",
        {
            "CreateVpcEndpointRequest": {
                "VpcEndpointType": "Interface",
                "SubnetId": [
                    {"tag": 1, "content": "subnet-a"},
                    {"tag": 2, "content": "subnet-b"},
                    {"tag": 3, "content": "subnet-c"},
                ],
            }
        },
        {
            "CreateVpcEndpointResponse": {
                "vpcEndpoint": {
                    "vpcEndpointId": "vpce-1",
                    "vpcEndpointType": "Interface",
                    "subnetIdSet": {"item": ["subnet-a", "subnet-b", "subnet-c"]},
                }
            }
        },
    )
    gateway = call(
        EC2,
        "CreateVpcEndpoint",
        {"vpcEndpointType": "Gateway"},
        {"vpcEndpoint": {"vpcEndpointId": "vpce-2", "vpcEndpointType": "Gateway"}},
    )
    [event] = events_of(interface)
    assert (event.resource_ids, event.quantity, event.hourly_cost) == (("vpce-1",), 3, pytest.approx(3 * 0.01))
    assert events_of(gateway) == []


@pytest.mark.parametrize(
    ("request_", "response", "kind", "hourly", "reason"),
    [
        (
            {"name": "web", "type": "application"},
            {"loadBalancers": [{"loadBalancerArn": "arn:lb/app/web/1"}]},
            "application",
            0.0225,
            None,
        ),
        (
            {"name": "tcp", "type": "network"},
            {"loadBalancers": [{"loadBalancerArn": "arn:lb/net/tcp/1"}]},
            "network",
            0.0225,
            None,
        ),
        (
            {"name": "gw", "type": "gateway"},
            {"loadBalancers": [{"loadBalancerArn": "arn:lb/gwy/gw/1"}]},
            "gateway",
            None,
            "unknown_sku",
        ),
        (
            {"loadBalancerName": "old", "listeners": [{"loadBalancerPort": 80}]},
            {"dNSName": "old.elb"},
            "classic",
            0.025,
            None,
        ),
    ],
)
def test_create_load_balancer_by_type(request_, response, kind: str, hourly, reason) -> None:
    record = call("elasticloadbalancing.amazonaws.com", "CreateLoadBalancer", request_, response)
    [event] = events_of(record)
    assert (event.family, event.hourly_cost, event.unpriced_reason) == (kind, hourly, reason)
    assert event.pricing["basis"] == "hourly_excluding_lcu"


def test_classic_load_balancer_id_matches_its_delete() -> None:
    record = call(
        "elasticloadbalancing.amazonaws.com", "CreateLoadBalancer", {"loadBalancerName": "old"}, {"dNSName": "x"}
    )
    [event] = events_of(record)
    assert event.resource_ids == (f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/old",)


# -- RDS ----------------------------------------------------------------------------------------------------------
def test_create_db_instance_multi_az_doubles_instance_and_storage() -> None:
    record = call(
        RDS,
        "CreateDBInstance",
        {
            "dBInstanceIdentifier": "Orders",
            "dBInstanceClass": "db.m5.large",
            "engine": "MySQL",
            "multiAZ": True,
            "allocatedStorage": 100,
        },
        {
            "dBInstanceIdentifier": "orders",
            "dBInstanceClass": "db.m5.large",
            "engine": "mysql",
            "multiAZ": True,
            "allocatedStorage": 100,
            "storageType": "gp2",
        },
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(2 * 0.171 + 2 * 100 * 0.115 / H)
    assert event.resource_ids == (f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders",)
    assert (event.family, event.attributes["multi_az"], event.attributes["engine"]) == ("db.m5", True, "mysql")


def test_create_db_instance_io1_storage_and_iops() -> None:
    record = call(
        RDS,
        "CreateDBInstance",
        {
            "dBInstanceIdentifier": "pg",
            "dBInstanceClass": "db.r6g.large",
            "engine": "postgres",
            "allocatedStorage": 200,
            "storageType": "io1",
            "iops": 3000,
        },
        None,
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(0.225 + (200 * 0.125 + 3000 * 0.10) / H)


def test_rds_outside_us_east_1_prices_the_instance_and_lists_storage_as_unpriced() -> None:
    record = call(
        RDS,
        "CreateDBInstance",
        {"dBInstanceIdentifier": "db1", "dBInstanceClass": "db.t3.micro", "engine": "mysql", "allocatedStorage": 20},
        None,
        region="us-west-1",
    )
    # without a us-west-1 regional factor: the storage rate is unknown, the instance is still priced
    data = prices().to_dict()
    del data["regional_factors"]["regions"]["us-west-1"]
    [event] = events_of(record, PriceTable.from_dict(data))
    assert (event.hourly_cost, event.cost_status) == (0.022, "priced")
    assert event.pricing["unpriced_parts"] == ["rds_storage:gp2_gb_month: unknown_region"]
    # shipped table: the storage is the regional estimate, us-east-1 gp2 0.115/GB-month x us-west-1 factor 1.1667
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(0.022 + 20 * 0.115 * 1.1667 / H)
    assert (event.cost_status, event.pricing["basis"], event.pricing["base_basis"]) == (
        "estimated_fallback",
        "regional_fallback",
        "on_demand",
    )
    assert "unpriced_parts" not in event.pricing


def test_restores_start_a_new_instance() -> None:
    snapshot = call(
        RDS,
        "RestoreDBInstanceFromDBSnapshot",
        {"dBInstanceIdentifier": "copy", "dBSnapshotIdentifier": "snap"},
        {
            "dBInstanceIdentifier": "copy",
            "dBInstanceClass": "db.t3.micro",
            "engine": "mysql",
            "allocatedStorage": 20,
            "storageType": "gp2",
        },
    )
    pitr = call(
        RDS,
        "RestoreDBInstanceToPointInTime",
        {"sourceDBInstanceIdentifier": "orders", "targetDBInstanceIdentifier": "orders-pitr"},
        {"dBInstanceClass": "db.m5.large", "engine": "mysql", "allocatedStorage": 100, "storageType": "gp2"},
    )
    [a] = events_of(snapshot)
    [b] = events_of(pitr)
    assert a.hourly_cost == pytest.approx(0.017 + 20 * 0.115 / H)
    assert b.hourly_cost == pytest.approx(0.171 + 100 * 0.115 / H)
    assert b.resource_ids == (f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-pitr",)


def test_modify_db_instance_class_change() -> None:
    rid = f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders"
    ledger = known(
        row(
            rid,
            "rds_instance",
            hourly_cost=0.017 + 20 * 0.115 / H,
            instance_type="db.t3.micro",
            attributes={"engine": "mysql", "multi_az": False, "storage_gb": 20, "storage_type": "gp2"},
        )
    )
    record = call(
        RDS,
        "ModifyDBInstance",
        {"dBInstanceIdentifier": "orders", "dBInstanceClass": "db.m5.large", "applyImmediately": True},
        {"dBInstanceIdentifier": "orders", "engine": "mysql"},
    )
    [event] = events_of(record, known=ledger)
    assert event.hourly_cost == pytest.approx(0.171 + 20 * 0.115 / H)
    assert event.attributes["previous_hourly_cost"] == pytest.approx(0.017 + 20 * 0.115 / H)
    password = call(RDS, "ModifyDBInstance", {"dBInstanceIdentifier": "orders", "masterUserPassword": "****"}, {})
    assert events_of(password, known=ledger) == []


def test_create_db_cluster_aurora_is_usage_based_and_multi_az_cluster_is_three_instances() -> None:
    aurora = call(
        RDS,
        "CreateDBCluster",
        {"dBClusterIdentifier": "Aur", "engine": "aurora-postgresql"},
        {"dBClusterIdentifier": "aur", "engine": "aurora-postgresql"},
    )
    multi = call(
        RDS,
        "CreateDBCluster",
        {
            "dBClusterIdentifier": "maz",
            "engine": "mysql",
            "dBClusterInstanceClass": "db.m5.large",
            "allocatedStorage": 100,
            "storageType": "io1",
            "iops": 1000,
        },
        None,
    )
    [a] = events_of(aurora)
    [m] = events_of(multi)
    assert (a.resource_type, a.hourly_cost, a.unpriced_reason) == ("rds_cluster", None, "usage_based")
    assert a.resource_ids == (f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:aur",)
    assert (m.hourly_cost, m.quantity, m.pricing["basis"]) == (pytest.approx(3 * 0.171), 3, "instances_only")


def test_delete_db_instance_makes_no_cost_event() -> None:
    assert (
        events_of(call(RDS, "DeleteDBInstance", {"dBInstanceIdentifier": "orders"}, {"dBInstanceClass": "db.m5.large"}))
        == []
    )


# -- data services ------------------------------------------------------------------------------------------------
def test_elasticache_cluster_and_replication_group_node_counts() -> None:
    cluster = call(
        "elasticache.amazonaws.com",
        "CreateCacheCluster",
        {"cacheClusterId": "Sessions", "cacheNodeType": "cache.m6g.large", "engine": "memcached", "numCacheNodes": 3},
        {"cacheClusterId": "sessions"},
    )
    group = call(
        "elasticache.amazonaws.com",
        "CreateReplicationGroup",
        {
            "replicationGroupId": "cart",
            "cacheNodeType": "cache.r6g.large",
            "engine": "redis",
            "numNodeGroups": 2,
            "replicasPerNodeGroup": 1,
        },
        {"replicationGroupId": "cart"},
    )
    valkey = call(
        "elasticache.amazonaws.com",
        "CreateReplicationGroup",
        {"replicationGroupId": "vk", "cacheNodeType": "cache.r6g.large", "engine": "valkey", "numCacheClusters": 2},
        {},
    )
    [c] = events_of(cluster)
    [g] = events_of(group)
    [v] = events_of(valkey)
    assert (c.hourly_cost, c.quantity, c.family) == (pytest.approx(3 * 0.149), 3, "cache.m6g")
    assert c.resource_ids == (f"arn:aws:elasticache:us-east-1:{ACCOUNT}:cluster:sessions",)
    assert (g.hourly_cost, g.quantity) == (pytest.approx(4 * 0.206), 4)
    assert (v.hourly_cost, v.cost_status, v.pricing["basis"]) == (
        pytest.approx(2 * 0.206),
        "estimated_fallback",
        "redis_price_ceiling",
    )


def test_redshift_nodes_and_resize() -> None:
    create = call(
        "redshift.amazonaws.com",
        "CreateCluster",
        {"clusterIdentifier": "dw", "nodeType": "ra3.4xlarge", "numberOfNodes": 2, "clusterType": "multi-node"},
        {"clusterIdentifier": "dw", "nodeType": "ra3.4xlarge", "numberOfNodes": 2},
    )
    [event] = events_of(create)
    assert (event.hourly_cost, event.quantity, event.family) == (pytest.approx(2 * 3.26), 2, "ra3")
    rid = f"arn:aws:redshift:us-east-1:{ACCOUNT}:cluster:dw"
    ledger = known(
        row(rid, "redshift_cluster", hourly_cost=2 * 3.26, instance_type="ra3.4xlarge", attributes={"nodes": 2})
    )
    resize = call("redshift.amazonaws.com", "ResizeCluster", {"clusterIdentifier": "dw", "numberOfNodes": 4}, {})
    [event] = events_of(resize, known=ledger)
    assert event.hourly_cost == pytest.approx(4 * 3.26)
    assert event.attributes["previous_hourly_cost"] == pytest.approx(2 * 3.26)


def test_redshift_create_cluster_is_not_ecs_or_cloudhsm() -> None:
    """CreateCluster exists in several services: only the billable ones are priced."""
    for source in ("ecs.amazonaws.com", "cloudhsm.amazonaws.com"):
        assert events_of(call(source, "CreateCluster", {"clusterName": "x", "hsmType": "hsm1.medium"}, {})) == []


def test_opensearch_domain_data_masters_and_storage() -> None:
    record = call(
        "es.amazonaws.com",
        "CreateDomain",
        {
            "domainName": "logs",
            "clusterConfig": {
                "instanceType": "c4.2xlarge.search",
                "instanceCount": 2,
                "dedicatedMasterEnabled": True,
                "dedicatedMasterType": "c4.2xlarge.search",
                "dedicatedMasterCount": 3,
            },
            "eBSOptions": {"eBSEnabled": True, "volumeType": "gp2", "volumeSize": 100},
        },
        {"domainStatus": {"domainName": "logs"}},
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(2 * 0.587 + 3 * 0.587 + 2 * 100 * 0.135 / H)
    assert event.resource_ids == (f"arn:aws:es:us-east-1:{ACCOUNT}:domain/logs",)
    legacy = call(
        "es.amazonaws.com",
        "CreateElasticsearchDomain",
        {
            "domainName": "old",
            "elasticsearchClusterConfig": {"instanceType": "c4.2xlarge.elasticsearch", "instanceCount": 1},
        },
        {},
    )
    [event] = events_of(legacy)
    assert event.hourly_cost == 0.587
    unknown = call(
        "es.amazonaws.com",
        "CreateDomain",
        {"domainName": "x", "clusterConfig": {"instanceType": "r6g.large.search"}},
        {},
    )
    assert events_of(unknown)[0].unpriced_reason == "unknown_instance_type"


def test_dynamodb_provisioned_capacity_and_on_demand() -> None:
    provisioned = call(
        "dynamodb.amazonaws.com",
        "CreateTable",
        {
            "tableName": "orders",
            "provisionedThroughput": {"readCapacityUnits": 10, "writeCapacityUnits": 5},
            "globalSecondaryIndexes": [
                {"indexName": "by_user", "provisionedThroughput": {"readCapacityUnits": 5, "writeCapacityUnits": 5}}
            ],
        },
        {"tableDescription": {"tableName": "orders"}},
    )
    on_demand = call(
        "dynamodb.amazonaws.com", "CreateTable", {"tableName": "events", "billingMode": "PAY_PER_REQUEST"}, {}
    )
    elsewhere = call(
        "dynamodb.amazonaws.com",
        "CreateTable",
        {"tableName": "t", "provisionedThroughput": {"readCapacityUnits": 1, "writeCapacityUnits": 1}},
        {},
        region="eu-west-1",
    )
    [event] = events_of(provisioned)
    assert event.hourly_cost == pytest.approx(15 * 0.00013 + 10 * 0.00065)
    assert (event.quantity, event.unit) == (25, "capacity_unit")
    assert events_of(on_demand) == []
    assert events_of(elsewhere)[0].unpriced_reason == "unknown_region"


def test_msk_brokers_plus_storage() -> None:
    arn = f"arn:aws:kafka:us-east-1:{ACCOUNT}:cluster/stream/abc-1"
    record = call(
        "kafka.amazonaws.com",
        "CreateCluster",
        {
            "clusterName": "stream",
            "numberOfBrokerNodes": 3,
            "brokerNodeGroupInfo": {
                "instanceType": "kafka.m5.large",
                "storageInfo": {"ebsStorageInfo": {"volumeSize": 1000}},
            },
        },
        {"clusterArn": arn, "clusterName": "stream", "state": "CREATING"},
    )
    [event] = events_of(record)
    assert event.hourly_cost == pytest.approx(3 * 0.21 + 3 * 1000 * 0.10 / H)
    assert (event.resource_ids, event.family) == ((arn,), "kafka.m5")
    v2 = call(
        "kafka.amazonaws.com",
        "CreateClusterV2",
        {
            "clusterName": "s2",
            "provisioned": {"numberOfBrokerNodes": 2, "brokerNodeGroupInfo": {"instanceType": "kafka.m5.large"}},
        },
        {"clusterArn": "arn:k2"},
    )
    assert events_of(v2)[0].hourly_cost == pytest.approx(2 * 0.21)
    serverless = call(
        "kafka.amazonaws.com",
        "CreateClusterV2",
        {"clusterName": "s3", "serverless": {"vpcConfigs": []}},
        {"clusterArn": "arn:k3"},
    )
    assert events_of(serverless)[0].unpriced_reason == "usage_based"


# -- EKS, SageMaker -----------------------------------------------------------------------------------------------
def test_eks_cluster_is_ten_cents_an_hour() -> None:
    record = call(
        "eks.amazonaws.com",
        "CreateCluster",
        {"name": "prod", "version": "1.30"},
        {"cluster": {"name": "prod", "arn": "arn:eks"}},
    )
    [event] = events_of(record)
    assert (event.resource_type, event.hourly_cost) == ("eks_cluster", 0.10)
    assert event.resource_ids == (f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/prod",)


def test_sagemaker_endpoint_is_priced_from_its_remembered_config() -> None:
    config = call(
        "sagemaker.amazonaws.com",
        "CreateEndpointConfig",
        {
            "endpointConfigName": "Bert-Config",
            "productionVariants": [
                {"variantName": "a", "instanceType": "ml.g4dn.xlarge", "initialInstanceCount": 2},
                {"variantName": "b", "instanceType": "ml.p3.2xlarge", "initialInstanceCount": 1},
            ],
        },
        {"endpointConfigArn": "arn:cfg"},
        event_id="cfg",
    )
    endpoint = call(
        "sagemaker.amazonaws.com",
        "CreateEndpoint",
        {"endpointName": "bert", "endpointConfigName": "Bert-Config"},
        {"endpointArn": "arn:ep"},
        event_id="ep",
        when="2024-05-01T10:05:00Z",
    )
    assert events_of(config) == []  # no cost by itself
    ledger, events = fold([config, endpoint])
    [event] = events
    assert event.hourly_cost == pytest.approx(2 * 0.7364 + 3.825)
    assert (event.quantity, event.pricing["confidence"]) == (3, "low")
    config_row = ledger[(TENANT, ACCOUNT, f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/bert-config")]
    assert (config_row.resource_type, config_row.state) == ("sagemaker_endpoint_config", "defined")
    orphan = call(
        "sagemaker.amazonaws.com", "CreateEndpoint", {"endpointName": "x", "endpointConfigName": "never-seen"}, {}
    )
    assert events_of(orphan)[0].unpriced_reason == "unknown_endpoint_config"


def test_sagemaker_notebook() -> None:
    gpu = call(
        "sagemaker.amazonaws.com",
        "CreateNotebookInstance",
        {"notebookInstanceName": "nb", "instanceType": "ml.g4dn.xlarge"},
        {},
    )
    small = call(
        "sagemaker.amazonaws.com",
        "CreateNotebookInstance",
        {"notebookInstanceName": "nb2", "instanceType": "ml.t3.medium"},
        {},
    )
    assert events_of(gpu)[0].hourly_cost == 0.7364
    assert events_of(small)[0].unpriced_reason == "unknown_instance_type"


def test_unknown_calls_make_no_cost_event() -> None:
    for source, name in [
        ("s3.amazonaws.com", "CreateBucket"),
        ("iam.amazonaws.com", "CreateUser"),
        ("lambda.amazonaws.com", "CreateFunction20150331"),
    ]:
        assert events_of(call(source, name, {"x": 1}, {"y": 2})) == []


def test_every_resource_type_is_documented_and_reachable() -> None:
    assert len(RESOURCE_TYPES) == 17 and len(set(RESOURCE_TYPES)) == 17


# -- bad input ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("record", "field"),
    [
        (call(EC2, "RunInstances", {}, {"instancesSet": "i-1,i-2"}, event_id="bad-1"), "responseElements.instancesSet"),
        (call(EC2, "CreateVolume", {"size": "abc"}, {"volumeId": "vol-1"}, event_id="bad-2"), "requestParameters.size"),
        (
            call(EC2, "CreateSnapshot", {}, {"snapshotId": "snap-1", "volumeSize": "abc"}, event_id="bad-3"),
            "responseElements.volumeSize",
        ),
        (call(EC2, "RunInstances", "not-decoded", None, event_id="bad-4"), "requestParameters"),
        (
            call(EC2, "RunInstances", {"instanceType": ["m5.large"]}, None, event_id="bad-5"),
            "requestParameters.instanceType",
        ),
        (
            call(
                EC2,
                "RunInstances",
                {"blockDeviceMapping": items({"ebs": {"volumeSize": "big"}})},
                {"instancesSet": items(instance("i-1", "m5.large"))},
                event_id="bad-6",
            ),
            "requestParameters.blockDeviceMapping.items[0].ebs.volumeSize",
        ),
        (
            call(RDS, "CreateDBInstance", {"dBInstanceIdentifier": "x", "multiAZ": "maybe"}, None, event_id="bad-7"),
            "requestParameters.multiAZ",
        ),
    ],
)
def test_wrong_types_are_rejected_with_event_id_and_field(record: dict[str, Any], field: str) -> None:
    result = normalize(entry(record), prices())
    assert isinstance(result, Rejected)
    assert field in result.reason
    assert record["eventID"] in result.reason and result.locator == f"eventID={record['eventID']}"
    assert result.raw.startswith(b"{") and result.source == "test"


def test_null_response_elements_never_raise() -> None:
    """A successful create whose request and response were both null still created something: price what the
    call alone tells (an EIP, a NAT gateway), say why the rest is unpriced, and never guess a volume size."""
    expected = {
        "CreateVolume": [("ebs_volume", None, "unpriced", "unknown_volume_size")],
        "CreateSnapshot": [("ebs_snapshot", None, "unpriced", "unknown_volume_size")],
        "AllocateAddress": [("elastic_ip", 0.005, "priced", None)],
        "CreateNatGateway": [("nat_gateway", 0.045, "priced", None)],
        "CreateVpcEndpoint": [],  # type unknown: gateway endpoints are free, so nothing is claimed
    }
    for name, events in expected.items():
        result = normalize(entry(call(EC2, name, None, None)), prices())
        assert isinstance(result, list), name
        assert [(e.resource_type, e.hourly_cost, e.cost_status, e.unpriced_reason) for e in result] == events, name
