"""EBS: CreateVolume, ModifyVolume, CreateSnapshot(s) and the block devices of RunInstances.

$/hour of a volume = (GiB x $/GB-month + provisioned extras) / 730, from the snapshot's `ebs` service. Its data is
us-east-1 only: another region with a regional factor gets the labelled estimate us-east-1 price x factor
(`cost_status="estimated_fallback"`, `pricing["basis"]="regional_fallback"`, see draft.py); a region without
one (made-up, China) is `unknown_region`:
* gp2, st1, sc1, standard: size only;
* gp3: size + IOPS above the free 3,000 + throughput above the free 125 MiB/s;
* io1, io2: size + every provisioned IOPS. io2 above 32,000 IOPS is cheaper per IOPS in real bills; the
  snapshot only has the first tier, so those are priced at it (`pricing["basis"]="io2_tier1_ceiling"`).
A volume type the table does not know is `unknown_sku`; a size the record does not give is `unknown_volume_size`.
`family` of an ebs_volume is its volume type (gp3, io2, ...) so a first io2 volume is novel.

Snapshots are priced at the full volume size x the standard snapshot rate: an upper bound (snapshots are
incremental; the first one is at most the volume), so `pricing["basis"]="full_volume_size_ceiling"`.
"""

from __future__ import annotations

from typing import Any

from streams.normalize.draft import Bill, Ctx, Draft, draft
from streams.normalize.fields import Node

VOLUME = "ebs_volume"
SNAPSHOT = "ebs_snapshot"
VOLUME_TYPES = frozenset({"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"})
GP3_FREE_IOPS = 3000
GP3_FREE_THROUGHPUT = 125
IO2_TIER1_MAX_IOPS = 32000


def volume_draft(
    ctx: Ctx,
    volume_type: str | None,
    size: float | None,
    iops: float | None,
    throughput: float | None,
    ids: tuple[str, ...],
    count: int = 1,
    attributes: dict[str, Any] | None = None,
) -> Draft:
    """`count` identical volumes of `size` GiB each."""
    bill = Bill(ctx.prices, ctx.region)
    vtype = (volume_type or "gp2").lower()
    basis = "on_demand"
    if not ctx.prices.has_region("ebs", ctx.region, fallback=True):
        bill.missing("unknown_region")
    elif vtype not in VOLUME_TYPES:
        bill.missing("unknown_sku")
    elif size is None:
        bill.missing("unknown_volume_size")
    else:
        bill.monthly("ebs", f"{vtype}_gb_month", size * count)
        if vtype == "gp3":
            bill.monthly("ebs", "gp3_iops_month_above_3000", max(0.0, (iops or 0) - GP3_FREE_IOPS) * count)
            bill.monthly(
                "ebs", "gp3_throughput_mibps_month_above_125", max(0.0, (throughput or 0) - GP3_FREE_THROUGHPUT) * count
            )
        elif vtype in ("io1", "io2"):
            if iops is None:
                bill.missing("unknown_iops")
            else:
                bill.monthly("ebs", f"{vtype}_iops_month", iops * count)
                if vtype == "io2" and iops > IO2_TIER1_MAX_IOPS:
                    basis = "io2_tier1_ceiling"
    attrs: dict[str, Any] = {"volume_type": vtype, "size_gib": size, "count": count}
    if iops is not None:
        attrs["iops"] = iops
    if throughput is not None:
        attrs["throughput"] = throughput
    if volume_type is None:
        attrs["volume_type_defaulted"] = True  # the API default when none is given is gp2
    attrs.update(attributes or {})
    quantity, unit = (size * count, "GiB") if size is not None else (float(count), "volume")
    return draft(bill, VOLUME, ids, quantity, unit, family=vtype, attributes=attrs, basis=basis)


def block_device_drafts(
    ctx: Ctx, mapping: Node, instances: list[Node], instance_count: int, instance_ids: tuple[str, ...]
) -> list[Draft]:
    """One ebs_volume draft per EBS entry of a RunInstances `blockDeviceMapping` (every instance gets each)."""
    out: list[Draft] = []
    for entry in mapping.items():
        ebs = entry.get("ebs")
        if entry.get("virtualName").present or entry.get("noDevice").present or not ebs.present:
            continue  # instance store or a suppressed device: nothing extra to pay
        ebs.obj()
        device = entry.get("deviceName").text()
        ids = tuple(_attached_volume_ids(instances, device))
        out.append(
            volume_draft(
                ctx,
                ebs.get("volumeType").text(),
                ebs.get("volumeSize").number(),
                ebs.get("iops").number(),
                ebs.get("throughput").number(),
                ids,
                count=instance_count,
                attributes={
                    "device_name": device,
                    "delete_on_termination": ebs.get("deleteOnTermination").flag(),
                    "instance_ids": list(instance_ids),
                    "from": "block_device_mapping",
                },
            )
        )
    return out


def _attached_volume_ids(instances: list[Node], device: str | None) -> list[str]:
    """Volume ids the response already names for `device` (rarely present at launch time)."""
    out = []
    for item in instances:
        for mapped in item.get("blockDeviceMapping").items():
            if mapped.get("deviceName").text() == device:
                volume_id = mapped.get("ebs", "volumeId").text()
                if volume_id:
                    out.append(volume_id)
    return out


def create_volume(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, ctx.resp
    volume_id = resp.get("volumeId").text()
    size = resp.get("size").number()
    if size is None:
        size = req.get("size").number()
    return [
        volume_draft(
            ctx,
            resp.get("volumeType").text() or req.get("volumeType").text(),
            size,
            _either(resp.get("iops"), req.get("iops")),
            _either(resp.get("throughput"), req.get("throughput")),
            (volume_id,) if volume_id else (),
            attributes=_snapshot_attr(resp.get("snapshotId").text() or req.get("snapshotId").text()),
        )
    ]


def _either(first: Node, second: Node) -> float | None:
    value = first.number()
    return value if value is not None else second.number()


def _snapshot_attr(snapshot_id: str | None) -> dict[str, Any]:
    return {"snapshot_id": snapshot_id} if snapshot_id else {}


def modify_volume(ctx: Ctx) -> list[Draft]:
    """The volume's new $/hour (target size/type/IOPS/throughput), with the previous one when known."""
    req = ctx.req.first(("ModifyVolumeRequest",), ())
    mod = ctx.resp.first(("ModifyVolumeResponse", "volumeModification"), ("volumeModification",))
    volume_id = mod.get("volumeId").text() or req.get("volumeId").text() or req.get("VolumeId").text()
    known = ctx.known_resource(volume_id) if volume_id else None
    kattr = known.attributes if known is not None else {}

    def target(mod_key: str, *req_keys: str) -> Any:
        value = mod.get(mod_key).value
        for key in req_keys:
            if value is None:
                value = req.get(key).value
        return value

    size = Node(target("targetSize", "size", "Size"), ("target", "size")).number()
    vtype = Node(target("targetVolumeType", "volumeType", "VolumeType"), ("target", "volumeType")).text()
    iops = Node(target("targetIops", "iops", "Iops"), ("target", "iops")).number()
    throughput = Node(target("targetThroughput", "throughput", "Throughput"), ("target", "throughput")).number()
    return [
        volume_draft(
            ctx,
            vtype or kattr.get("volume_type"),
            size if size is not None else kattr.get("size_gib"),
            iops if iops is not None else kattr.get("iops"),
            throughput if throughput is not None else kattr.get("throughput"),
            (volume_id,) if volume_id else (),
            attributes={"previous_hourly_cost": known.hourly_cost if known is not None else None},
        )
    ]


def _snapshot_draft(ctx: Ctx, node: Node) -> Draft:
    bill = Bill(ctx.prices, ctx.region)
    snapshot_id = node.get("snapshotId").text()
    size = node.get("volumeSize").number()
    if size is None:
        if not ctx.prices.has_region("ebs", ctx.region, fallback=True):
            bill.missing("unknown_region")
        bill.missing("unknown_volume_size")
    else:
        bill.monthly("ebs", "snapshot_standard_gb_month", size)
    attrs = {"volume_id": node.get("volumeId").text(), "size_gib": size}
    quantity, unit = (size, "GiB") if size is not None else (1.0, "snapshot")
    return draft(
        bill,
        SNAPSHOT,
        (snapshot_id,) if snapshot_id else (),
        quantity,
        unit,
        attributes=attrs,
        basis="full_volume_size_ceiling",
    )


def create_snapshot(ctx: Ctx) -> list[Draft]:
    return [_snapshot_draft(ctx, ctx.resp)]


def create_snapshots(ctx: Ctx) -> list[Draft]:
    """CreateSnapshots (all volumes of an instance): one draft per snapshot in the response."""
    return [_snapshot_draft(ctx, item) for item in ctx.resp.get("snapshotSet").items()]
