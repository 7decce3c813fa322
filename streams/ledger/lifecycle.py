"""Lifecycle calls that price nothing but move a resource: delete/terminate/release (close), stop, start,
CreateEndpointConfig (define) and on-demand DynamoDB tables (open without an hourly cost).

Each entry names the resource type and reads the ids the same way the catalog builds them at create time
(`streams.normalize.ids`), so a close meets its open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.events import LogEntry
from streams.normalize import catalog_data, catalog_sagemaker, ids
from streams.normalize.fields import Node, root


@dataclass(frozen=True, slots=True)
class Step:
    """One resource's lifecycle step read from a record (before it becomes a ResourceChange)."""

    resource_id: str
    resource_type: str
    action: str  # open | close | stop | start | define
    attributes: dict[str, Any]


Reader = Callable[[LogEntry, Node, Node], list[str]]  # (entry, request, response) -> resource ids


def _instances(entry: LogEntry, req: Node, resp: Node) -> list[str]:
    items = resp.get("instancesSet").items() or req.get("instancesSet").items()
    return [i for i in (item.get("instanceId").text() for item in items) if i]


def _field(*paths: tuple[str, ...], source: str = "req") -> Reader:
    def read(entry: LogEntry, req: Node, resp: Node) -> list[str]:
        node = (req if source == "req" else resp).first(*paths)
        return node.strings()

    return read


def _named(build: Callable[[str, str, str], str], *paths: tuple[str, ...]) -> Reader:
    def read(entry: LogEntry, req: Node, resp: Node) -> list[str]:
        name = req.first(*paths).text()
        return [build(entry.region, entry.account_id, name)] if name else []

    return read


def _address(entry: LogEntry, req: Node, resp: Node) -> list[str]:
    value = req.get("allocationId").text() or req.get("publicIp").text()
    return [value] if value else []


def _nat(entry: LogEntry, req: Node, resp: Node) -> list[str]:
    value = (
        req.first(("DeleteNatGatewayRequest", "NatGatewayId"), ("natGatewayId",), ("NatGatewayId",)).text()
        or resp.first(("DeleteNatGatewayResponse", "natGatewayId"), ("natGatewayId",)).text()
    )
    return [value] if value else []


def _endpoints(entry: LogEntry, req: Node, resp: Node) -> list[str]:
    return req.first(
        ("DeleteVpcEndpointsRequest", "VpcEndpointId"), ("vpcEndpointIds",), ("VpcEndpointId",), ("vpcEndpointId",)
    ).strings()


def _load_balancer(entry: LogEntry, req: Node, resp: Node) -> list[str]:
    arn = req.get("loadBalancerArn").text()
    if arn:
        return [arn]
    name = req.get("loadBalancerName").text()
    return [ids.classic_load_balancer(entry.region, entry.account_id, name)] if name else []


def _kafka(entry: LogEntry, req: Node, resp: Node) -> list[str]:
    arn = req.get("clusterArn").text() or resp.get("clusterArn").text()
    return [arn] if arn else []


def _sagemaker(kind: str, key: str) -> Reader:
    def read(entry: LogEntry, req: Node, resp: Node) -> list[str]:
        name = req.get(key).text()
        return [ids.sagemaker(entry.region, entry.account_id, kind, name)] if name else []

    return read


EC2 = "ec2.amazonaws.com"
RDS = "rds.amazonaws.com"
CACHE = "elasticache.amazonaws.com"
REDSHIFT = "redshift.amazonaws.com"
SAGEMAKER = "sagemaker.amazonaws.com"

# (eventSource, eventName) -> (resource_type, action, reader)
LIFECYCLE: dict[tuple[str, str], tuple[str, str, Reader]] = {
    (EC2, "TerminateInstances"): ("ec2_instance", "close", _instances),
    (EC2, "StopInstances"): ("ec2_instance", "stop", _instances),
    (EC2, "StartInstances"): ("ec2_instance", "start", _instances),
    (EC2, "DeleteVolume"): ("ebs_volume", "close", _field(("volumeId",))),
    (EC2, "DeleteSnapshot"): ("ebs_snapshot", "close", _field(("snapshotId",))),
    (EC2, "ReleaseAddress"): ("elastic_ip", "close", _address),
    (EC2, "DeleteNatGateway"): ("nat_gateway", "close", _nat),
    (EC2, "DeleteVpcEndpoints"): ("vpc_endpoint", "close", _endpoints),
    ("elasticloadbalancing.amazonaws.com", "DeleteLoadBalancer"): ("load_balancer", "close", _load_balancer),
    (RDS, "DeleteDBInstance"): ("rds_instance", "close", _named(ids.rds_instance, ("dBInstanceIdentifier",))),
    (RDS, "StopDBInstance"): ("rds_instance", "stop", _named(ids.rds_instance, ("dBInstanceIdentifier",))),
    (RDS, "StartDBInstance"): ("rds_instance", "start", _named(ids.rds_instance, ("dBInstanceIdentifier",))),
    (RDS, "DeleteDBCluster"): ("rds_cluster", "close", _named(ids.rds_cluster, ("dBClusterIdentifier",))),
    (RDS, "StopDBCluster"): ("rds_cluster", "stop", _named(ids.rds_cluster, ("dBClusterIdentifier",))),
    (RDS, "StartDBCluster"): ("rds_cluster", "start", _named(ids.rds_cluster, ("dBClusterIdentifier",))),
    (CACHE, "DeleteCacheCluster"): ("elasticache", "close", _named(ids.cache_cluster, ("cacheClusterId",))),
    (CACHE, "DeleteReplicationGroup"): (
        "elasticache",
        "close",
        _named(ids.replication_group, ("replicationGroupId",)),
    ),
    (REDSHIFT, "DeleteCluster"): ("redshift_cluster", "close", _named(ids.redshift_cluster, ("clusterIdentifier",))),
    (REDSHIFT, "PauseCluster"): ("redshift_cluster", "stop", _named(ids.redshift_cluster, ("clusterIdentifier",))),
    (REDSHIFT, "ResumeCluster"): ("redshift_cluster", "start", _named(ids.redshift_cluster, ("clusterIdentifier",))),
    ("es.amazonaws.com", "DeleteDomain"): (
        "opensearch_domain",
        "close",
        _named(ids.opensearch_domain, ("domainName",)),
    ),
    ("es.amazonaws.com", "DeleteElasticsearchDomain"): (
        "opensearch_domain",
        "close",
        _named(ids.opensearch_domain, ("domainName",)),
    ),
    ("eks.amazonaws.com", "DeleteCluster"): ("eks_cluster", "close", _named(ids.eks_cluster, ("name",))),
    ("kafka.amazonaws.com", "DeleteCluster"): ("msk_cluster", "close", _kafka),
    (SAGEMAKER, "DeleteEndpoint"): ("sagemaker_endpoint", "close", _sagemaker("endpoint", "endpointName")),
    (SAGEMAKER, "DeleteEndpointConfig"): (
        catalog_sagemaker.ENDPOINT_CONFIG,
        "close",
        _sagemaker("endpoint-config", "endpointConfigName"),
    ),
    (SAGEMAKER, "DeleteNotebookInstance"): (
        "sagemaker_notebook",
        "close",
        _sagemaker("notebook-instance", "notebookInstanceName"),
    ),
    (SAGEMAKER, "StopNotebookInstance"): (
        "sagemaker_notebook",
        "stop",
        _sagemaker("notebook-instance", "notebookInstanceName"),
    ),
    (SAGEMAKER, "StartNotebookInstance"): (
        "sagemaker_notebook",
        "start",
        _sagemaker("notebook-instance", "notebookInstanceName"),
    ),
    ("dynamodb.amazonaws.com", "DeleteTable"): ("dynamodb_table", "close", _named(ids.dynamodb_table, ("tableName",))),
}

# Every call `steps` reads: LIFECYCLE and the two special cases below (streams/fold.py FOLDED_CALLS uses it too).
STEPPED: frozenset[tuple[str, str]] = frozenset(LIFECYCLE) | {
    (SAGEMAKER, "CreateEndpointConfig"),
    ("dynamodb.amazonaws.com", "CreateTable"),
}


def steps(entry: LogEntry) -> list[Step]:
    """Lifecycle steps a successful record implies (FieldError propagates; the caller decides)."""
    key = (entry.event_source, entry.event_name)
    if key not in STEPPED:
        return []  # most calls: decided on the name alone, before the record is looked at
    record = root(entry.record)
    req, resp = record.get("requestParameters"), record.get("responseElements")
    if key == (SAGEMAKER, "CreateEndpointConfig"):
        name = req.get("endpointConfigName").text()
        if not name:
            return []
        variants = catalog_sagemaker.variants(req)
        resource_id = ids.sagemaker(entry.region, entry.account_id, "endpoint-config", name)
        return [Step(resource_id, catalog_sagemaker.ENDPOINT_CONFIG, "define", {"variants": variants})]
    if key == ("dynamodb.amazonaws.com", "CreateTable"):
        if catalog_data.billing_mode(req, resp) != "PAY_PER_REQUEST":
            return []  # provisioned tables open from their cost event
        name = req.get("tableName").text()
        if not name:
            return []
        resource_id = ids.dynamodb_table(entry.region, entry.account_id, name)
        return [Step(resource_id, "dynamodb_table", "open", {"billing_mode": "PAY_PER_REQUEST"})]
    spec = LIFECYCLE.get(key)
    if spec is None:
        return []
    resource_type, action, reader = spec
    return [Step(rid, resource_type, action, {}) for rid in dict.fromkeys(reader(entry, req, resp))]
