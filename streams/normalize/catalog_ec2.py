"""EC2 instances: RunInstances, StartInstances, ModifyInstanceAttribute (instance type change).

Prices are Linux, shared-tenancy, on-demand $/hour (the snapshot's `ec2` service). What the record cannot tell
us is said, not hidden:

* type and count come from `responseElements.instancesSet.items` — a launch template hides `instanceType` in the
  request and one call can start many instances, each item with its own type. The request is used only when
  there is no response (then `minCount` instances, the number AWS guarantees, and `attributes["max_count"]`).
* spot (`instanceMarketOptions.marketType == "spot"`, `spotInstanceRequestId` or `instanceLifecycle == "spot"`
  on an item): the spot price is not in CloudTrail, so the on-demand price is used as the ceiling it is (spot
  never bills above on-demand): `cost_status="priced"`, `attributes["spot"]=True`,
  `pricing["basis"]="on_demand_ceiling"`.
* dedicated tenancy: the snapshot has shared-tenancy prices only; the shared price is a floor, so the event is
  `cost_status="estimated_fallback"`, `pricing["basis"]="shared_tenancy_floor"`, `attributes["tenancy"]`.
  `host` tenancy runs on a Dedicated Host billed by the host, not per instance: unpriced, `dedicated_host`.
* `platform == "windows"` on an item: Linux price as a floor (`estimated_fallback`, `linux_price_floor`).
* EBS block devices in the request (`blockDeviceMapping`) become `ebs_volume` events after the instance events
  (see catalog_ebs). Instance-store (`virtualName`) and `noDevice` entries cost nothing extra.
* Instances that Auto Scaling or an EKS node group launch arrive as RunInstances (actor `service:...`) and are
  priced here; the group calls themselves price nothing, so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.normalize.catalog_ebs import block_device_drafts
from streams.normalize.draft import ESTIMATED, PRICED, Bill, Ctx, Draft, draft, family_of
from streams.normalize.fields import Node

RESOURCE = "ec2_instance"


def instance_draft(
    ctx: Ctx,
    instance_type: str | None,
    ids: tuple[str, ...],
    count: float,
    *,
    spot: bool = False,
    tenancy: str | None = None,
    platform: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Draft:
    """Price `count` instances of one type (the shared arithmetic of launch, start and resize)."""
    bill = Bill(ctx.prices, ctx.region)
    attrs: dict[str, Any] = dict(attributes or {})
    basis, status = "on_demand", PRICED
    if instance_type is None:
        bill.missing("unknown_instance_type")
    elif tenancy == "host":
        bill.missing("dedicated_host")
    else:
        bill.hourly("ec2", instance_type, count, instance=True)
    if spot:
        attrs["spot"] = True
        basis = "on_demand_ceiling"
    if tenancy and tenancy != "default":
        attrs["tenancy"] = tenancy
        if tenancy == "dedicated":
            basis, status = "shared_tenancy_floor", ESTIMATED
    if platform:
        attrs["platform"] = platform
        if platform.lower() == "windows":
            basis, status = "linux_price_floor", ESTIMATED
    return draft(
        bill,
        RESOURCE,
        ids,
        count,
        "instance",
        instance_type=instance_type,
        family=family_of(instance_type),
        attributes=attrs,
        basis=basis,
        status=status,
    )


def _request_spot(req: Node) -> bool:
    market = req.get("instanceMarketOptions", "marketType").text()
    return (market or "").lower() == "spot"


def _request_tenancy(req: Node) -> str | None:
    return req.get("placement", "tenancy").text() or req.get("tenancy").text()


def run_instances(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, ctx.resp
    request_type = req.get("instanceType").text()
    request_spot = _request_spot(req)
    request_tenancy = _request_tenancy(req)
    groups: dict[tuple[Any, ...], list[str]] = {}
    counts: dict[tuple[Any, ...], int] = {}
    extra: dict[str, Any] = {}
    items = resp.get("instancesSet").items()
    for item in items:
        instance_id = item.get("instanceId").text()
        spot = (
            request_spot
            or item.get("spotInstanceRequestId").text() is not None
            or (item.get("instanceLifecycle").text() or "").lower() == "spot"
        )
        key = (
            item.get("instanceType").text() or request_type,
            spot,
            item.get("placement", "tenancy").text() or request_tenancy,
            item.get("platform").text(),
        )
        groups.setdefault(key, [])
        counts[key] = counts.get(key, 0) + 1
        if instance_id:
            groups[key].append(instance_id)
    if not items:
        # No response to read (truncated or absent): the request's minCount is what AWS guarantees to start.
        launch = req.get("instancesSet").items()
        first = launch[0] if launch else Node(None)
        count = first.get("minCount").integer() or req.get("minCount").integer() or 1
        maximum = first.get("maxCount").integer() or req.get("maxCount").integer()
        key = (request_type, request_spot, request_tenancy, None)
        groups[key], counts[key] = [], count
        extra = {"count_from": "request_min_count"}
        if maximum is not None:
            extra["max_count"] = maximum
    drafts = []
    for key, ids in groups.items():
        itype, spot, tenancy, platform = key
        drafts.append(
            instance_draft(
                ctx, itype, tuple(ids), counts[key], spot=spot, tenancy=tenancy, platform=platform, attributes=extra
            )
        )
    total = sum(counts.values())
    all_ids = tuple(i for ids in groups.values() for i in ids)
    drafts.extend(block_device_drafts(ctx, req.get("blockDeviceMapping"), items, total, all_ids))
    return drafts


def _instance_ids(ctx: Ctx) -> list[str]:
    items = ctx.resp.get("instancesSet").items() or ctx.req.get("instancesSet").items()
    out = []
    for item in items:
        instance_id = item.get("instanceId").text()
        if instance_id:
            out.append(instance_id)
    return out


def start_instances(ctx: Ctx) -> list[Draft]:
    """Compute billing resumes: priced from what the ledger knows about each instance."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for instance_id in _instance_ids(ctx):
        known = ctx.known_resource(instance_id)
        if known is not None and known.state == "running":
            continue  # already billing; nothing starts
        attrs = known.attributes if known is not None else {}
        key = (
            known.instance_type if known is not None else None,
            bool(attrs.get("spot")),
            attrs.get("tenancy"),
            attrs.get("platform"),
        )
        groups.setdefault(key, []).append(instance_id)
    return [
        instance_draft(ctx, itype, tuple(ids), len(ids), spot=spot, tenancy=tenancy, platform=platform)
        for (itype, spot, tenancy, platform), ids in groups.items()
    ]


def _new_instance_type(req: Node) -> str | None:
    node = req.get("instanceType")
    if isinstance(node.value, Mapping):
        return node.get("value").text()
    if node.present:
        return node.text()
    if (req.get("attribute").text() or "") == "instanceType":
        return req.get("value").text()
    return None


def modify_instance_attribute(ctx: Ctx) -> list[Draft]:
    """An instance type change: the new $/hour, with the previous one when the ledger knows it."""
    new_type = _new_instance_type(ctx.req)
    if new_type is None:
        return []  # another attribute (termination protection, user data, ...): no cost change
    instance_id = ctx.req.get("instanceId").text()
    known = ctx.known_resource(instance_id) if instance_id else None
    attrs = dict(known.attributes) if known is not None else {}
    extra: dict[str, Any] = {
        "previous_hourly_cost": known.hourly_cost if known is not None else None,
        "previous_instance_type": known.instance_type if known is not None else None,
    }
    return [
        instance_draft(
            ctx,
            new_type,
            (instance_id,) if instance_id else (),
            1,
            spot=bool(attrs.get("spot")),
            tenancy=attrs.get("tenancy"),
            platform=attrs.get("platform"),
            attributes=extra,
        )
    ]
