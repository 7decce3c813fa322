"""RDS: CreateDBInstance, RestoreDBInstanceFromDBSnapshot, RestoreDBInstanceToPointInTime,
CreateDBInstanceReadReplica, ModifyDBInstance, CreateDBCluster, StartDBInstance.

$/hour of an instance = class price for its engine (snapshot `rds`, sku `<class>|<engine>`, single-AZ) x 2 when
Multi-AZ, + allocated storage x $/GB-month / 730 (x 2 when Multi-AZ) + io1 IOPS. Storage prices are us-east-1
only (`rds_storage`); elsewhere the storage is the labelled regional estimate (us-east-1 rate x the region's
factor, making the event `estimated_fallback`), and in a region without a factor the instance is priced and the
storage is listed under `pricing["unpriced_parts"]` (instance-hours are the bill; leaving them unpriced for want
of a storage rate would hide more than it shows).

Engines are read as the API writes them, lowercased (`MySQL` -> `mysql`); `aurora` is Aurora MySQL. Oracle
bring-your-own-license editions share one price (`oracle:byol`); `oracle-ee` is BYOL unless `licenseModel` says
license-included. Aurora storage and I/O are usage, and Aurora Multi-AZ means separate replica instances, so
Aurora instances are priced per instance only. `db.serverless` (Aurora Serverless v2) instances bill by ACU
use: unpriced, `usage_based`.

CreateDBCluster: a Multi-AZ DB cluster (non-Aurora, `dBClusterInstanceClass` set) runs 3 instances of that class:
priced as 3 x class (storage left out). An Aurora cluster bills storage and I/O by use and its instances arrive
as their own CreateDBInstance calls, so the cluster event is unpriced with reason `usage_based` (still scored
for novelty). ModifyDBInstance prices the instance as it will be after the change (class, Multi-AZ, storage)
and keeps the previous $/hour from the ledger; a modify that touches none of these is no cost event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.normalize import ids
from streams.normalize.draft import Bill, Ctx, Draft, draft, family_of, resume
from streams.normalize.fields import Node

INSTANCE = "rds_instance"
CLUSTER = "rds_cluster"
MULTI_AZ_CLUSTER_INSTANCES = 3
_STORAGE_TYPES = {"gp2": "gp2", "gp3": "gp3", "io1": "io1", "io2": "io1", "standard": "standard"}


def engine_key(engine: str | None, license_model: str | None) -> str | None:
    if not engine:
        return None
    engine = engine.lower()
    if engine in ("aurora", "aurora-mysql"):
        return "aurora-mysql"
    if engine == "postgresql":
        return "postgres"
    if engine.startswith("oracle"):
        byol = (license_model or "").lower() == "bring-your-own-license"
        if byol or (engine in ("oracle-ee", "oracle-ee-cdb", "oracle-se") and license_model != "license-included"):
            return "oracle:byol"
    return engine


def _bill_instance(
    ctx: Ctx,
    bill: Bill,
    db_class: str | None,
    engine: str | None,
    license_model: str | None,
    multi_az: bool,
    storage_gb: float | None,
    storage_type: str | None,
    iops: float | None,
) -> str:
    """Add instance + storage to `bill`; returns the pricing basis."""
    key = engine_key(engine, license_model)
    aurora = bool(key and key.startswith("aurora"))
    copies = 2 if multi_az and not aurora else 1
    if db_class is None:
        bill.missing("unknown_instance_type")
    elif key is None:
        bill.missing("unknown_engine")
    elif db_class == "db.serverless":
        bill.missing("usage_based")
    else:
        bill.hourly("rds", f"{db_class}|{key}", copies, instance=True)
    if aurora or not storage_gb:
        return "on_demand"
    stype = _STORAGE_TYPES.get((storage_type or "gp2").lower())
    if stype is None:
        bill.unpriced_parts.append(f"rds_storage:{storage_type}: unknown_sku")
        return "on_demand"
    bill.monthly("rds_storage", f"{stype}_gb_month", storage_gb * copies, optional=True)
    if stype == "io1" and iops:
        bill.monthly("rds_storage", "io1_iops_month", iops * copies, optional=True)
    return "on_demand"


def _instance_node(resp: Node) -> Node:
    """The DBInstance in the response: flat (CloudTrail) or under `dBInstance` (some re-emitters)."""
    nested = resp.get("dBInstance")
    return nested if nested.present else resp


def _pick(*nodes: Node) -> Any:
    for node in nodes:
        if node.present:
            return node
    return nodes[-1]


def create_db_instance(ctx: Ctx) -> list[Draft]:
    """CreateDBInstance and the Restore*/ReadReplica calls that also start a new instance."""
    req, resp = ctx.req, _instance_node(ctx.resp)

    def field(name: str) -> Node:
        return _pick(resp.get(name), req.get(name))

    name = (
        resp.get("dBInstanceIdentifier").text()
        or req.get("dBInstanceIdentifier").text()
        or req.get("targetDBInstanceIdentifier").text()
    )
    db_class = field("dBInstanceClass").text()
    engine = field("engine").text()
    license_model = field("licenseModel").text()
    multi_az = bool(field("multiAZ").flag())
    storage = field("allocatedStorage").number()
    storage_type = field("storageType").text()
    iops = field("iops").number()
    bill = Bill(ctx.prices, ctx.region)
    basis = _bill_instance(ctx, bill, db_class, engine, license_model, multi_az, storage, storage_type, iops)
    attrs = _attrs(engine, multi_az, storage, storage_type, iops, license_model)
    cluster = field("dBClusterIdentifier").text()
    if cluster:
        attrs["cluster"] = cluster.lower()
    resource_ids = (ids.rds_instance(ctx.region, ctx.account, name),) if name else ()
    return [
        draft(
            bill,
            INSTANCE,
            resource_ids,
            1,
            "instance",
            instance_type=db_class,
            family=family_of(db_class),
            attributes=attrs,
            basis=basis,
        )
    ]


def _attrs(
    engine: str | None,
    multi_az: bool,
    storage: float | None,
    storage_type: str | None,
    iops: float | None,
    license_model: str | None,
) -> dict[str, Any]:
    return {
        "engine": engine.lower() if engine else None,
        "multi_az": multi_az,
        "storage_gb": storage,
        "storage_type": storage_type,
        "iops": iops,
        "license_model": license_model,
    }


_MODIFY_FIELDS = ("dBInstanceClass", "multiAZ", "allocatedStorage", "storageType", "iops")


def modify_db_instance(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, _instance_node(ctx.resp)
    if not any(req.get(f).present for f in _MODIFY_FIELDS):
        return []  # passwords, backups, public access, ...: no change in what it costs per hour
    name = req.get("dBInstanceIdentifier").text() or resp.get("dBInstanceIdentifier").text()
    resource_id = ids.rds_instance(ctx.region, ctx.account, name) if name else None
    known = ctx.known_resource(resource_id) if resource_id else None
    kattr: Mapping[str, Any] = known.attributes if known is not None else {}
    pending = resp.get("pendingModifiedValues")

    def target(key: str, attr: str | None = None) -> Node:
        for node in (req.get(key), pending.get(key), resp.get(key)):
            if node.present:
                return node
        return Node(kattr.get(attr) if attr else None, ("ledger", attr or key))

    db_class = target("dBInstanceClass").text() or (known.instance_type if known is not None else None)
    engine = resp.get("engine").text() or kattr.get("engine")
    license_model = resp.get("licenseModel").text() or kattr.get("license_model")
    multi_az = bool(target("multiAZ", "multi_az").flag())
    storage = target("allocatedStorage", "storage_gb").number()
    storage_type = target("storageType", "storage_type").text()
    iops = target("iops", "iops").number()
    bill = Bill(ctx.prices, ctx.region)
    basis = _bill_instance(ctx, bill, db_class, engine, license_model, multi_az, storage, storage_type, iops)
    attrs = _attrs(engine, multi_az, storage, storage_type, iops, license_model)
    attrs["previous_hourly_cost"] = known.hourly_cost if known is not None else None
    attrs["previous_instance_type"] = known.instance_type if known is not None else None
    attrs["apply_immediately"] = req.get("applyImmediately").flag()
    return [
        draft(
            bill,
            INSTANCE,
            (resource_id,) if resource_id else (),
            1,
            "instance",
            instance_type=db_class,
            family=family_of(db_class),
            attributes=attrs,
            basis=basis,
        )
    ]


def create_db_cluster(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, ctx.resp
    inner = resp.get("dBCluster")
    resp = inner if inner.present else resp
    name = resp.get("dBClusterIdentifier").text() or req.get("dBClusterIdentifier").text()
    engine = _pick(resp.get("engine"), req.get("engine")).text()
    db_class = _pick(resp.get("dBClusterInstanceClass"), req.get("dBClusterInstanceClass")).text()
    mode = _pick(resp.get("engineMode"), req.get("engineMode")).text()
    key = engine_key(engine, None)
    bill = Bill(ctx.prices, ctx.region)
    quantity = 1.0
    if db_class and key and not key.startswith("aurora"):
        quantity = float(MULTI_AZ_CLUSTER_INSTANCES)
        bill.hourly("rds", f"{db_class}|{key}", quantity, instance=True)
        basis = "instances_only"
    else:
        bill.missing("usage_based")  # Aurora: storage and I/O by use; its instances are priced when created
        basis = "usage_based"
    attrs = {"engine": engine.lower() if engine else None, "engine_mode": mode}
    resource_ids = (ids.rds_cluster(ctx.region, ctx.account, name),) if name else ()
    return [
        draft(
            bill,
            CLUSTER,
            resource_ids,
            quantity,
            "instance",
            instance_type=db_class,
            family=family_of(db_class),
            attributes=attrs,
            basis=basis,
        )
    ]


def start_db_instance(ctx: Ctx) -> list[Draft]:
    """Compute billing resumes at the $/hour the ledger holds for the instance."""
    name = ctx.req.get("dBInstanceIdentifier").text() or _instance_node(ctx.resp).get("dBInstanceIdentifier").text()
    if not name:
        return []
    return resume(ctx, ids.rds_instance(ctx.region, ctx.account, name), INSTANCE)
