"""The cost catalog: which (eventSource, eventName) starts or changes an hourly cost, and who prices it.

Keyed on eventSource AND eventName: `CreateCluster` exists in ecs, redshift, eks, kafka (MSK) and cloudhsm, and
only some of them bill by the hour. Anything not listed here produces no cost event.

`kind` says what a successful call does: `create` starts something new (a failed one is counted as a failed
create attempt); `change` resizes or resumes something that exists (priced against the ledger).

resource_type values (the baseline keys) a cost event can carry:
    ec2_instance, ebs_volume, ebs_snapshot, elastic_ip, nat_gateway, vpc_endpoint, load_balancer,
    rds_instance, rds_cluster, elasticache, redshift_cluster, opensearch_domain, eks_cluster,
    sagemaker_endpoint, sagemaker_notebook, dynamodb_table, msk_cluster
(`sagemaker_endpoint_config` exists only in the ledger.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streams.normalize import (
    catalog_data,
    catalog_ebs,
    catalog_ec2,
    catalog_eks,
    catalog_network,
    catalog_rds,
    catalog_sagemaker,
    ids,
)
from streams.normalize.draft import Ctx, Draft, resume

Handler = Callable[[Ctx], list[Draft]]

RESOURCE_TYPES: tuple[str, ...] = (
    "ec2_instance",
    "ebs_volume",
    "ebs_snapshot",
    "elastic_ip",
    "nat_gateway",
    "vpc_endpoint",
    "load_balancer",
    "rds_instance",
    "rds_cluster",
    "elasticache",
    "redshift_cluster",
    "opensearch_domain",
    "eks_cluster",
    "sagemaker_endpoint",
    "sagemaker_notebook",
    "dynamodb_table",
    "msk_cluster",
)


@dataclass(frozen=True, slots=True)
class Entry:
    handler: Handler
    kind: str  # create | change


def _resume_redshift(ctx: Ctx) -> list[Draft]:
    name = ctx.req.get("clusterIdentifier").text()
    if not name:
        return []
    return resume(ctx, ids.redshift_cluster(ctx.region, ctx.account, name), catalog_data.REDSHIFT, "node")


EC2 = "ec2.amazonaws.com"
RDS = "rds.amazonaws.com"

CATALOG: dict[tuple[str, str], Entry] = {
    (EC2, "RunInstances"): Entry(catalog_ec2.run_instances, "create"),
    (EC2, "StartInstances"): Entry(catalog_ec2.start_instances, "change"),
    (EC2, "ModifyInstanceAttribute"): Entry(catalog_ec2.modify_instance_attribute, "change"),
    (EC2, "CreateVolume"): Entry(catalog_ebs.create_volume, "create"),
    (EC2, "ModifyVolume"): Entry(catalog_ebs.modify_volume, "change"),
    (EC2, "CreateSnapshot"): Entry(catalog_ebs.create_snapshot, "create"),
    (EC2, "CreateSnapshots"): Entry(catalog_ebs.create_snapshots, "create"),
    (EC2, "AllocateAddress"): Entry(catalog_network.allocate_address, "create"),
    (EC2, "CreateNatGateway"): Entry(catalog_network.create_nat_gateway, "create"),
    (EC2, "CreateVpcEndpoint"): Entry(catalog_network.create_vpc_endpoint, "create"),
    ("elasticloadbalancing.amazonaws.com", "CreateLoadBalancer"): Entry(catalog_network.create_load_balancer, "create"),
    (RDS, "CreateDBInstance"): Entry(catalog_rds.create_db_instance, "create"),
    (RDS, "RestoreDBInstanceFromDBSnapshot"): Entry(catalog_rds.create_db_instance, "create"),
    (RDS, "RestoreDBInstanceToPointInTime"): Entry(catalog_rds.create_db_instance, "create"),
    (RDS, "RestoreDBInstanceFromS3"): Entry(catalog_rds.create_db_instance, "create"),
    (RDS, "CreateDBInstanceReadReplica"): Entry(catalog_rds.create_db_instance, "create"),
    (RDS, "ModifyDBInstance"): Entry(catalog_rds.modify_db_instance, "change"),
    (RDS, "StartDBInstance"): Entry(catalog_rds.start_db_instance, "change"),
    (RDS, "CreateDBCluster"): Entry(catalog_rds.create_db_cluster, "create"),
    ("elasticache.amazonaws.com", "CreateCacheCluster"): Entry(catalog_data.create_cache_cluster, "create"),
    ("elasticache.amazonaws.com", "CreateReplicationGroup"): Entry(catalog_data.create_replication_group, "create"),
    ("redshift.amazonaws.com", "CreateCluster"): Entry(catalog_data.create_redshift_cluster, "create"),
    ("redshift.amazonaws.com", "ModifyCluster"): Entry(catalog_data.modify_redshift_cluster, "change"),
    ("redshift.amazonaws.com", "ResizeCluster"): Entry(catalog_data.modify_redshift_cluster, "change"),
    ("redshift.amazonaws.com", "ResumeCluster"): Entry(_resume_redshift, "change"),
    ("es.amazonaws.com", "CreateDomain"): Entry(catalog_data.create_domain, "create"),
    ("es.amazonaws.com", "CreateElasticsearchDomain"): Entry(catalog_data.create_domain, "create"),
    ("dynamodb.amazonaws.com", "CreateTable"): Entry(catalog_data.create_table, "create"),
    ("dynamodb.amazonaws.com", "UpdateTable"): Entry(catalog_data.update_table, "change"),
    ("kafka.amazonaws.com", "CreateCluster"): Entry(catalog_data.create_kafka_cluster, "create"),
    ("kafka.amazonaws.com", "CreateClusterV2"): Entry(catalog_data.create_kafka_cluster, "create"),
    ("eks.amazonaws.com", "CreateCluster"): Entry(catalog_eks.create_cluster, "create"),
    ("sagemaker.amazonaws.com", "CreateEndpoint"): Entry(catalog_sagemaker.create_endpoint, "create"),
    ("sagemaker.amazonaws.com", "UpdateEndpoint"): Entry(catalog_sagemaker.update_endpoint, "change"),
    ("sagemaker.amazonaws.com", "CreateNotebookInstance"): Entry(catalog_sagemaker.create_notebook_instance, "create"),
    ("sagemaker.amazonaws.com", "StartNotebookInstance"): Entry(catalog_sagemaker.start_notebook_instance, "change"),
}

# Calls that create something billable but price nothing themselves (their cost arrives through other calls).
# Listed so that a failed one still counts as a failed create attempt.
CREATES_WITHOUT_COST: frozenset[tuple[str, str]] = frozenset(
    {
        ("autoscaling.amazonaws.com", "CreateAutoScalingGroup"),
        ("eks.amazonaws.com", "CreateNodegroup"),
        ("sagemaker.amazonaws.com", "CreateEndpointConfig"),
    }
)


def lookup(event_source: str, event_name: str) -> Entry | None:
    return CATALOG.get((event_source, event_name))


def is_create(event_source: str, event_name: str) -> bool:
    entry = CATALOG.get((event_source, event_name))
    return (entry is not None and entry.kind == "create") or (event_source, event_name) in CREATES_WITHOUT_COST
