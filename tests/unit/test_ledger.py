"""The resources ledger: changes() from records, apply() as a pure fold, and what burns per hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import Resource, ResourceChange
from streams.ledger.pure import LedgerError, apply, changes, running_cost_per_hour
from streams.normalize.pure import normalize
from tests.unit.test_normalize_support import TENANT, call, entry, fold, prices

H = 730
ACCOUNT = "111122223333"
EC2 = "ec2.amazonaws.com"
T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)


def _items(*ids: str) -> dict[str, Any]:
    return {"items": [{"instanceId": i} for i in ids]}


def _run(ids: tuple[str, ...], itype: str = "m5.large", when: str = "2024-05-01T10:00:00Z") -> dict[str, Any]:
    launched = [{"instanceId": i, "instanceType": itype, "placement": {"tenancy": "default"}} for i in ids]
    return call(
        EC2,
        "RunInstances",
        {"instanceType": itype},
        {"instancesSet": {"items": launched}},
        event_id=f"run-{when}",
        when=when,
    )


def _ec2(name: str, ids: tuple[str, ...], when: str, **request: Any) -> dict[str, Any]:
    return call(
        EC2,
        name,
        {"instancesSet": _items(*ids), **request},
        {"instancesSet": _items(*ids)},
        event_id=f"{name}-{when}",
        when=when,
    )


def test_open_stop_start_resize_terminate_with_the_cost_at_each_step() -> None:
    run = _run(("i-1", "i-2"))
    stop = _ec2("StopInstances", ("i-1",), "2024-05-01T11:00:00Z")
    resize = call(
        EC2,
        "ModifyInstanceAttribute",
        {"instanceId": "i-1", "instanceType": {"value": "m5.xlarge"}},
        {},
        event_id="mod",
        when="2024-05-01T11:30:00Z",
    )
    start = _ec2("StartInstances", ("i-1",), "2024-05-01T12:00:00Z")
    terminate = _ec2("TerminateInstances", ("i-1", "i-2"), "2024-05-01T13:00:00Z")
    steps = [run, stop, resize, start, terminate]
    expected = [
        # (i-1 state, i-1 $/h while running, ledger burn now)
        ("running", 0.096, 2 * 0.096),  # two m5.large
        ("stopped", 0.096, 0.096),  # stopped: compute burns nothing
        ("stopped", 0.192, 0.096),  # resized while stopped: the new rate applies once it runs
        ("running", 0.192, 0.192 + 0.096),
        ("closed", 0.192, 0.0),
    ]
    for n, (state, hourly, burn) in enumerate(expected, start=1):
        ledger, _ = fold(steps[:n])
        row = ledger[(TENANT, ACCOUNT, "i-1")]
        assert (row.state, row.hourly_cost) == (state, pytest.approx(hourly)), n
        assert running_cost_per_hour(ledger) == pytest.approx(burn), n
    row = ledger[(TENANT, ACCOUNT, "i-1")]
    assert (row.instance_type, row.opened_by_event, row.last_event) == (
        "m5.xlarge",
        run["eventID"],
        terminate["eventID"],
    )
    assert row.opened_at == datetime(2024, 5, 1, 10, tzinfo=UTC) and row.changed_at == datetime(
        2024, 5, 1, 13, tzinfo=UTC
    )


def test_opens_split_the_event_cost_over_its_instances() -> None:
    record = _run(("i-a", "i-b", "i-c"))
    e = entry(record)
    events = normalize(e, prices())
    opened = changes(e, events)
    assert [(c.resource_id, c.action, c.hourly_cost) for c in opened] == [
        ("i-a", "open", pytest.approx(0.096)),  # 3 * 0.096 / 3
        ("i-b", "open", pytest.approx(0.096)),
        ("i-c", "open", pytest.approx(0.096)),
    ]
    assert opened[0].attributes["actor"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert opened[0].attributes["family"] == "m5"


def test_a_failed_call_changes_nothing() -> None:
    failed = _ec2("TerminateInstances", ("i-1",), "2024-05-01T13:00:00Z")
    failed["errorCode"] = "Client.UnauthorizedOperation"
    assert changes(entry(failed), []) == []


def test_block_device_volumes_open_only_when_the_response_names_them() -> None:
    mapping = {"items": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 8, "volumeType": "gp3"}}]}
    named = {
        "instanceId": "i-v",
        "instanceType": "m5.large",
        "blockDeviceMapping": {"items": [{"deviceName": "/dev/xvda", "ebs": {"volumeId": "vol-root"}}]},
    }
    record = call(EC2, "RunInstances", {"blockDeviceMapping": mapping}, {"instancesSet": {"items": [named]}})
    ledger, _ = fold([record])
    volume = ledger[(TENANT, ACCOUNT, "vol-root")]
    assert (volume.resource_type, volume.state, volume.hourly_cost) == (
        "ebs_volume",
        "running",
        pytest.approx(8 * 0.08 / H),
    )
    unnamed = _run(("i-w",))
    unnamed["requestParameters"]["blockDeviceMapping"] = mapping
    ledger, events = fold([unnamed])
    assert [e.resource_type for e in events] == ["ec2_instance", "ebs_volume"]
    assert list(ledger) == [(TENANT, ACCOUNT, "i-w")]


@pytest.mark.parametrize(
    ("create", "delete", "resource_id", "resource_type", "hourly"),
    [
        (
            call(EC2, "AllocateAddress", {}, {"allocationId": "eipalloc-1", "publicIpv4Pool": "amazon"}, event_id="a"),
            call(
                EC2,
                "ReleaseAddress",
                {"allocationId": "eipalloc-1"},
                {"_return": True},
                event_id="b",
                when="2024-05-01T11:00:00Z",
            ),
            "eipalloc-1",
            "elastic_ip",
            0.005,
        ),
        (
            call(
                EC2,
                "CreateNatGateway",
                {},
                {"CreateNatGatewayResponse": {"natGateway": {"natGatewayId": "nat-1"}}},
                event_id="a",
            ),
            call(
                EC2,
                "DeleteNatGateway",
                {"DeleteNatGatewayRequest": {"NatGatewayId": "nat-1"}},
                {},
                event_id="b",
                when="2024-05-01T11:00:00Z",
            ),
            "nat-1",
            "nat_gateway",
            0.045,
        ),
        (
            call(
                EC2,
                "CreateVpcEndpoint",
                {"VpcEndpointType": "Interface", "SubnetId": ["s-1", "s-2"]},
                {"vpcEndpoint": {"vpcEndpointId": "vpce-1", "vpcEndpointType": "Interface"}},
                event_id="a",
            ),
            call(
                EC2,
                "DeleteVpcEndpoints",
                {"DeleteVpcEndpointsRequest": {"VpcEndpointId": {"tag": 1, "content": "vpce-1"}}},
                {},
                event_id="b",
                when="2024-05-01T11:00:00Z",
            ),
            "vpce-1",
            "vpc_endpoint",
            2 * 0.01,
        ),
        (
            call(
                "rds.amazonaws.com",
                "CreateDBInstance",
                {"dBInstanceIdentifier": "Orders", "dBInstanceClass": "db.m5.large", "engine": "mysql"},
                None,
                event_id="a",
            ),
            call(
                "rds.amazonaws.com",
                "DeleteDBInstance",
                {"dBInstanceIdentifier": "orders"},
                None,
                event_id="b",
                when="2024-05-01T11:00:00Z",
            ),
            f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders",
            "rds_instance",
            0.171,
        ),
        (
            call("eks.amazonaws.com", "CreateCluster", {"name": "prod"}, {"cluster": {"name": "prod"}}, event_id="a"),
            call("eks.amazonaws.com", "DeleteCluster", {"name": "prod"}, {}, event_id="b", when="2024-05-01T11:00:00Z"),
            f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/prod",
            "eks_cluster",
            0.10,
        ),
        (
            call(
                "kafka.amazonaws.com",
                "CreateCluster",
                {"numberOfBrokerNodes": 3, "brokerNodeGroupInfo": {"instanceType": "kafka.m5.large"}},
                {"clusterArn": "arn:msk/1"},
                event_id="a",
            ),
            call(
                "kafka.amazonaws.com",
                "DeleteCluster",
                {"clusterArn": "arn:msk/1"},
                {},
                event_id="b",
                when="2024-05-01T11:00:00Z",
            ),
            "arn:msk/1",
            "msk_cluster",
            3 * 0.21,
        ),
    ],
)
def test_create_then_delete_closes_the_same_row(
    create, delete, resource_id: str, resource_type: str, hourly: float
) -> None:
    ledger, _ = fold([create])
    row = ledger[(TENANT, ACCOUNT, resource_id)]
    assert (row.resource_type, row.state, row.hourly_cost) == (resource_type, "running", pytest.approx(hourly))
    assert running_cost_per_hour(ledger) == pytest.approx(hourly)
    ledger, _ = fold([create, delete])
    row = ledger[(TENANT, ACCOUNT, resource_id)]
    assert row.state == "closed" and running_cost_per_hour(ledger) == 0.0


def test_endpoint_config_is_defined_then_closed() -> None:
    config = call(
        "sagemaker.amazonaws.com",
        "CreateEndpointConfig",
        {
            "endpointConfigName": "cfg",
            "productionVariants": [{"instanceType": "ml.g4dn.xlarge", "initialInstanceCount": 2, "variantName": "a"}],
        },
        {},
        event_id="a",
    )
    drop = call(
        "sagemaker.amazonaws.com",
        "DeleteEndpointConfig",
        {"endpointConfigName": "cfg"},
        {},
        event_id="b",
        when="2024-05-01T11:00:00Z",
    )
    key = (TENANT, ACCOUNT, f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/cfg")
    ledger, _ = fold([config])
    row = ledger[key]
    assert (row.state, row.hourly_cost, row.burning_per_hour) == ("defined", None, 0.0)
    assert row.attributes["variants"] == [
        {"name": "a", "instance_type": "ml.g4dn.xlarge", "count": 2, "serverless": False}
    ]
    ledger, _ = fold([config, drop])
    assert ledger[key].state == "closed"


# -- apply, directly ----------------------------------------------------------------------------------------------
def _change(
    action: str, minutes: int = 0, hourly: float | None = None, rid: str = "i-x", event: str | None = None, **kw: Any
) -> ResourceChange:
    return ResourceChange(
        tenant=TENANT,
        account_id=ACCOUNT,
        resource_id=rid,
        resource_type="ec2_instance",
        region="us-east-1",
        action=action,
        at=T0 + timedelta(minutes=minutes),
        event_id=event or f"{action}-{minutes}",
        hourly_cost=hourly,
        **kw,
    )


def test_changes_for_unknown_resources_return_what_is_known() -> None:
    closed = apply(None, _change("close"))
    stopped = apply(None, _change("stop"))
    started = apply(None, _change("start", hourly=0.096))
    resized = apply(None, _change("resize", hourly=0.192, instance_type="m5.xlarge"))
    assert (closed.state, closed.hourly_cost, closed.attributes["seen_open"]) == ("closed", None, False)
    assert (stopped.state, stopped.hourly_cost) == ("stopped", None)
    assert (started.state, started.hourly_cost) == ("running", 0.096)
    assert (resized.state, resized.hourly_cost, resized.instance_type) == ("running", 0.192, "m5.xlarge")
    assert closed.opened_by_event == "" and closed.last_event == "close-0"


def test_closed_is_terminal_and_reapplying_a_change_changes_nothing() -> None:
    row = apply(None, _change("open", 0, 0.096))
    assert apply(row, _change("open", 0, 0.096)) == row  # the same open delivered twice
    row = apply(row, _change("close", 10))
    for action in ("stop", "start", "resize"):
        assert apply(row, _change(action, 20, 1.0)) == row
    assert apply(row, _change("close", 30)) == row


def test_out_of_order_changes() -> None:
    """CloudTrail files are not time-ordered: an older change does not move the state (close always wins)."""
    row = apply(None, _change("stop", 30))  # the stop arrives first, for an id not yet seen open
    row = apply(row, _change("open", 0, 0.096, instance_type="m5.large", event="run"))
    assert (row.state, row.hourly_cost, row.instance_type, row.opened_by_event) == ("stopped", 0.096, "m5.large", "run")
    assert row.opened_at == T0 and "seen_open" not in row.attributes
    row = apply(row, _change("start", 20))  # older than the stop: ignored
    assert row.state == "stopped"
    row = apply(row, _change("close", 5))  # close wins whatever its time
    assert row.state == "closed"
    reopened = apply(row, _change("open", 60, 0.2, event="recreated"))  # a named resource re-created later
    assert (reopened.state, reopened.hourly_cost, reopened.opened_by_event) == ("running", 0.2, "recreated")


def test_an_unknown_action_is_a_bug() -> None:
    with pytest.raises(LedgerError):
        apply(None, _change("explode"))


# -- properties ---------------------------------------------------------------------------------------------------
_ops = st.lists(
    st.tuples(
        st.sampled_from(["open", "close", "stop", "start", "resize"]),
        st.sampled_from(["i-1", "i-2", "i-3", "vol-9"]),
        st.one_of(st.none(), st.sampled_from([0.0104, 0.096, 0.192, 3.06])),
    ),
    max_size=25,
)


def _model(ops: list[tuple[str, str, float | None]]) -> float:
    """What should be burning, from a deliberately simple reading of the same steps (in time order)."""
    state: dict[str, tuple[str, float | None]] = {}
    for action, rid, cost in ops:
        current = state.get(rid)
        if current is not None and current[0] == "closed":
            if action == "open":  # a later open re-creates the id (named resources are reused)
                state[rid] = ("running", cost)
            continue
        previous = current[1] if current is not None else None
        if action in ("open", "resize"):
            state[rid] = ("running" if action == "open" or current is None else current[0], cost)
        elif action == "start":
            state[rid] = ("running", cost if cost is not None else previous)
        else:
            state[rid] = ("closed" if action == "close" else "stopped", previous)
    return sum(c for s, c in state.values() if s == "running" and c is not None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ops)
def test_running_cost_equals_the_sum_of_open_resources(ops: list[tuple[str, str, float | None]]) -> None:
    ledger: dict[str, Resource] = {}
    for minute, (action, rid, cost) in enumerate(ops):
        change = _change(action, minute, cost if action in ("open", "start", "resize") else None, rid=rid)
        updated = apply(ledger.get(rid), change)  # never raises, whatever the id has seen
        assert updated is not None
        assert apply(updated, change) == updated  # replaying a change is a no-op
        ledger[rid] = updated
    assert running_cost_per_hour(ledger) == pytest.approx(_model(ops))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        ["TerminateInstances", "StopInstances", "StartInstances", "DeleteVolume", "ReleaseAddress", "DeleteNatGateway"]
    ),
    st.lists(st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12), min_size=1, max_size=4),
)
def test_lifecycle_calls_for_unknown_ids_never_raise(name: str, ids: list[str]) -> None:
    request = {"instancesSet": _items(*ids), "volumeId": ids[0], "allocationId": ids[0], "natGatewayId": ids[0]}
    record = call(EC2, name, request, {"instancesSet": _items(*ids)}, event_id="x")
    ledger, _ = fold([record])
    for row in ledger.values():
        assert row.state in ("closed", "stopped", "running")
        assert row.hourly_cost is None
