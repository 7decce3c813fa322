"""Data services: ElastiCache, Redshift, OpenSearch, DynamoDB, MSK (Kafka).

* ElastiCache CreateCacheCluster: node type x `numCacheNodes` (default 1). CreateReplicationGroup: node type x
  nodes, where nodes = `numCacheClusters`, else shards (`numNodeGroups`, default 1) x (`replicasPerNodeGroup` + 1),
  else the response's `memberClusters`. Redis OSS and Memcached nodes cost the same; Valkey nodes are cheaper
  and not in the snapshot, so they get the Redis price as a ceiling (`estimated_fallback`,
  `pricing["basis"]="redis_price_ceiling"`).
* Redshift CreateCluster: node type x `numberOfNodes` (1 for single-node). RA3 managed storage is usage: left out.
  ModifyCluster / ResizeCluster with a node type or count: the new $/hour.
* OpenSearch CreateDomain / CreateElasticsearchDomain (`es.amazonaws.com`): data nodes x type, + dedicated masters
  and UltraWarm nodes when enabled, + EBS GiB per data node x $/GB-month (+ io1 IOPS). `*.elasticsearch` types
  are priced as their `*.search` twins (same price). Snapshot data: us-east-1 and a few types only; other regions
  get the labelled regional estimate (`estimated_fallback`, `regional_fallback`, see draft.py).
* DynamoDB CreateTable / UpdateTable: provisioned mode only — RCU x $/RCU-hour + WCU x $/WCU-hour, global
  secondary indexes included. On-demand (`PAY_PER_REQUEST`) tables do not bill by the hour: no cost event (the
  ledger still records the table). Prices: us-east-1 list prices typed by hand (see the snapshot's sources);
  no regional estimate, so another region is `unknown_region`.
* MSK CreateCluster / CreateClusterV2 (`kafka.amazonaws.com`): broker type x `numberOfBrokerNodes` + EBS GiB per
  broker x broker storage $/GB-month. Serverless clusters bill by use: unpriced, `usage_based`.
"""

from __future__ import annotations

from typing import Any

from streams.normalize import ids
from streams.normalize.draft import ESTIMATED, PRICED, Bill, Ctx, Draft, draft, family_of
from streams.normalize.fields import Node

ELASTICACHE = "elasticache"
REDSHIFT = "redshift_cluster"
OPENSEARCH = "opensearch_domain"
DYNAMODB = "dynamodb_table"
MSK = "msk_cluster"


# -- ElastiCache -----------------------------------------------------------------------------------------------
def _cache_draft(ctx: Ctx, resource_id: str | None, node_type: str | None, nodes: int, engine: str | None) -> Draft:
    bill = Bill(ctx.prices, ctx.region)
    if node_type is None:
        bill.missing("unknown_instance_type")
    else:
        bill.hourly("elasticache", node_type, nodes, instance=True)
    valkey = (engine or "").lower() == "valkey"
    return draft(
        bill,
        ELASTICACHE,
        (resource_id,) if resource_id else (),
        nodes,
        "node",
        instance_type=node_type,
        family=family_of(node_type),
        attributes={"engine": engine.lower() if engine else None, "nodes": nodes},
        basis="redis_price_ceiling" if valkey else "on_demand",
        status=ESTIMATED if valkey else PRICED,
    )


def create_cache_cluster(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, ctx.resp
    inner = resp.get("cacheCluster")
    resp = inner if inner.present else resp
    name = resp.get("cacheClusterId").text() or req.get("cacheClusterId").text()
    node_type = resp.get("cacheNodeType").text() or req.get("cacheNodeType").text()
    nodes = resp.get("numCacheNodes").integer() or req.get("numCacheNodes").integer() or 1
    engine = resp.get("engine").text() or req.get("engine").text()
    resource_id = ids.cache_cluster(ctx.region, ctx.account, name) if name else None
    return [_cache_draft(ctx, resource_id, node_type, nodes, engine)]


def create_replication_group(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, ctx.resp
    inner = resp.get("replicationGroup")
    resp = inner if inner.present else resp
    name = resp.get("replicationGroupId").text() or req.get("replicationGroupId").text()
    node_type = resp.get("cacheNodeType").text() or req.get("cacheNodeType").text()
    clusters = req.get("numCacheClusters").integer()
    shards = req.get("numNodeGroups").integer()
    replicas = req.get("replicasPerNodeGroup").integer()
    if clusters:
        nodes = clusters
    elif shards is not None or replicas is not None:
        nodes = (shards or 1) * ((replicas or 0) + 1)
    else:
        nodes = len(resp.get("memberClusters").strings()) or 1
    engine = req.get("engine").text() or resp.get("engine").text()
    resource_id = ids.replication_group(ctx.region, ctx.account, name) if name else None
    return [_cache_draft(ctx, resource_id, node_type, nodes, engine)]


# -- Redshift --------------------------------------------------------------------------------------------------
def _redshift_draft(ctx: Ctx, name: str | None, node_type: str | None, nodes: int, extra: dict[str, Any]) -> Draft:
    bill = Bill(ctx.prices, ctx.region)
    if node_type is None:
        bill.missing("unknown_instance_type")
    else:
        bill.hourly("redshift", node_type, nodes, instance=True)
    resource_id = ids.redshift_cluster(ctx.region, ctx.account, name) if name else None
    return draft(
        bill,
        REDSHIFT,
        (resource_id,) if resource_id else (),
        nodes,
        "node",
        instance_type=node_type,
        family=family_of(node_type),
        attributes={"nodes": nodes, **extra},
        basis="on_demand_excluding_managed_storage",
    )


def create_redshift_cluster(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, ctx.resp
    name = resp.get("clusterIdentifier").text() or req.get("clusterIdentifier").text()
    node_type = resp.get("nodeType").text() or req.get("nodeType").text()
    nodes = resp.get("numberOfNodes").integer() or req.get("numberOfNodes").integer()
    if nodes is None:
        nodes = 1 if (req.get("clusterType").text() or "single-node") == "single-node" else 2
    return [_redshift_draft(ctx, name, node_type, nodes, {"cluster_type": req.get("clusterType").text()})]


def modify_redshift_cluster(ctx: Ctx) -> list[Draft]:
    """ModifyCluster / ResizeCluster that change node type or count: priced as the cluster will be."""
    req, resp = ctx.req, ctx.resp
    if not (req.get("nodeType").present or req.get("numberOfNodes").present):
        return []
    name = req.get("clusterIdentifier").text() or resp.get("clusterIdentifier").text()
    resource_id = ids.redshift_cluster(ctx.region, ctx.account, name) if name else None
    known = ctx.known_resource(resource_id) if resource_id else None
    pending = resp.get("pendingModifiedValues")
    node_type = (
        req.get("nodeType").text()
        or pending.get("nodeType").text()
        or (known.instance_type if known is not None else None)
        or resp.get("nodeType").text()
    )
    nodes = req.get("numberOfNodes").integer() or pending.get("numberOfNodes").integer()
    if nodes is None:
        known_nodes = known.attributes.get("nodes") if known is not None else None
        nodes = int(known_nodes) if isinstance(known_nodes, (int, float)) else resp.get("numberOfNodes").integer() or 1
    extra = {"previous_hourly_cost": known.hourly_cost if known is not None else None}
    return [_redshift_draft(ctx, name, node_type, nodes, extra)]


# -- OpenSearch ------------------------------------------------------------------------------------------------
def _search_type(instance_type: str | None) -> str | None:
    if instance_type and instance_type.endswith(".elasticsearch"):
        return instance_type[: -len(".elasticsearch")] + ".search"
    return instance_type


_OPENSEARCH_VOLUMES = {"gp2", "gp3", "io1", "standard"}


def create_domain(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, ctx.resp
    status = resp.get("domainStatus")
    config = req.first(("clusterConfig",), ("elasticsearchClusterConfig",))
    if not config.present:
        config = status.first(("clusterConfig",), ("elasticsearchClusterConfig",))
    name = req.get("domainName").text() or status.get("domainName").text()
    data_type = _search_type(config.get("instanceType").text())
    data_nodes = config.get("instanceCount").integer() or 1
    bill = Bill(ctx.prices, ctx.region)
    if data_type is None:
        bill.missing("unknown_instance_type")
    else:
        bill.hourly("opensearch", data_type, data_nodes, instance=True)
    attrs: dict[str, Any] = {"data_nodes": data_nodes}
    if config.get("dedicatedMasterEnabled").flag():
        master_type = _search_type(config.get("dedicatedMasterType").text()) or data_type
        masters = config.get("dedicatedMasterCount").integer() or 3
        attrs.update(master_type=master_type, masters=masters)
        if master_type is not None:
            bill.hourly("opensearch", master_type, masters, instance=True)
    if config.get("warmEnabled").flag():
        warm_type = _search_type(config.get("warmType").text())
        warm = config.get("warmCount").integer() or 0
        attrs.update(warm_type=warm_type, warm_nodes=warm)
        if warm_type is not None and warm:
            bill.hourly("opensearch", warm_type, warm, instance=True)
    ebs = req.first(("eBSOptions",), ("ebsOptions",), ("EBSOptions",))
    if ebs.get("eBSEnabled").flag() or ebs.get("ebsEnabled").flag():
        vtype = (ebs.get("volumeType").text() or "gp2").lower()
        size = ebs.get("volumeSize").number()
        attrs.update(volume_type=vtype, volume_size_gib=size)
        if vtype not in _OPENSEARCH_VOLUMES:
            bill.missing("unknown_sku")
        elif size:
            bill.monthly("opensearch", f"{vtype}_gb_month", size * data_nodes)
            iops = ebs.get("iops").number()
            if vtype == "io1" and iops:
                bill.monthly("opensearch", "io1_iops_month", iops * data_nodes)
    resource_id = ids.opensearch_domain(ctx.region, ctx.account, name) if name else None
    return [
        draft(
            bill,
            OPENSEARCH,
            (resource_id,) if resource_id else (),
            data_nodes,
            "instance",
            instance_type=data_type,
            family=family_of(data_type),
            attributes=attrs,
        )
    ]


# -- DynamoDB --------------------------------------------------------------------------------------------------
def _capacity(node: Node) -> tuple[float, float]:
    throughput = node.get("provisionedThroughput")
    return (throughput.get("readCapacityUnits").number() or 0.0, throughput.get("writeCapacityUnits").number() or 0.0)


def billing_mode(req: Node, resp: Node) -> str:
    table = resp.get("tableDescription")
    mode = req.get("billingMode").text() or table.get("billingModeSummary", "billingMode").text()
    return (mode or "PROVISIONED").upper()


def _table_draft(ctx: Ctx, req: Node, name: str | None, extra: dict[str, Any]) -> list[Draft]:
    read, write = _capacity(req)
    for index in req.get("globalSecondaryIndexes").items():
        r, w = _capacity(index)
        read, write = read + r, write + w
    bill = Bill(ctx.prices, ctx.region)
    bill.hourly("dynamodb", "read_capacity_unit_hour", read)
    bill.hourly("dynamodb", "write_capacity_unit_hour", write)
    if not bill.components and bill.miss is None:
        bill.missing("unknown_capacity")
    resource_id = ids.dynamodb_table(ctx.region, ctx.account, name) if name else None
    return [
        draft(
            bill,
            DYNAMODB,
            (resource_id,) if resource_id else (),
            read + write,
            "capacity_unit",
            attributes={
                "billing_mode": "PROVISIONED",
                "read_capacity_units": read,
                "write_capacity_units": write,
                **extra,
            },
            basis="provisioned_capacity",
        )
    ]


def create_table(ctx: Ctx) -> list[Draft]:
    req = ctx.req
    if billing_mode(req, ctx.resp) == "PAY_PER_REQUEST":
        return []  # on-demand: billed per request, nothing by the hour
    name = req.get("tableName").text() or ctx.resp.get("tableDescription", "tableName").text()
    return _table_draft(ctx, req, name, {})


def update_table(ctx: Ctx) -> list[Draft]:
    req = ctx.req
    if not req.get("provisionedThroughput").present or billing_mode(req, ctx.resp) == "PAY_PER_REQUEST":
        return []
    name = req.get("tableName").text()
    resource_id = ids.dynamodb_table(ctx.region, ctx.account, name) if name else None
    known = ctx.known_resource(resource_id) if resource_id else None
    return _table_draft(ctx, req, name, {"previous_hourly_cost": known.hourly_cost if known is not None else None})


# -- MSK -------------------------------------------------------------------------------------------------------
def create_kafka_cluster(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, ctx.resp
    provisioned = req.get("provisioned")
    spec = provisioned if provisioned.present else req
    arn = resp.get("clusterArn").text()
    bill = Bill(ctx.prices, ctx.region)
    if req.get("serverless").present:
        bill.missing("usage_based")
        return [draft(bill, MSK, (arn,) if arn else (), 1, "cluster", attributes={"serverless": True})]
    group = spec.get("brokerNodeGroupInfo")
    broker_type = group.get("instanceType").text()
    brokers = spec.get("numberOfBrokerNodes").integer() or 1
    storage = group.get("storageInfo", "ebsStorageInfo", "volumeSize").number()
    if broker_type is None:
        bill.missing("unknown_instance_type")
    else:
        bill.hourly("msk", broker_type, brokers, instance=True)
    if storage and not (broker_type or "").startswith("express."):  # express brokers bill storage by use
        bill.monthly("msk", "broker_storage_gb_month", storage * brokers)
    return [
        draft(
            bill,
            MSK,
            (arn,) if arn else (),
            brokers,
            "broker",
            instance_type=broker_type,
            family=family_of(broker_type),
            attributes={"brokers": brokers, "storage_gib_per_broker": storage, "name": req.get("clusterName").text()},
        )
    ]
