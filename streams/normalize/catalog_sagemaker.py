"""SageMaker: CreateEndpointConfig (remembered, no cost), CreateEndpoint / UpdateEndpoint, CreateNotebookInstance.

An endpoint's instances are named in its endpoint *config*, an earlier call. CreateEndpointConfig therefore makes
no cost event; the ledger keeps it as a `sagemaker_endpoint_config` row in state "defined" whose
`attributes["variants"]` lists `{"instance_type", "count", "serverless"}` per production variant (see
`variants()`). CreateEndpoint finds that row in `known` and prices sum(count x instance $/hour); a config the
ledger never saw gives an unpriced event (`unknown_endpoint_config`); serverless variants bill by use
(`usage_based`).

Prices come from a hand-copied table of GPU instances (ml.p3, ml.g4dn; us-east-1 assumed): `pricing["confidence"]
= "low"`. Other ml.* types are `unknown_instance_type`. Notebook ML storage is not priced.
"""

from __future__ import annotations

from typing import Any

from streams.normalize import ids
from streams.normalize.draft import Bill, Ctx, Draft, draft, family_of, resume
from streams.normalize.fields import Node

ENDPOINT = "sagemaker_endpoint"
ENDPOINT_CONFIG = "sagemaker_endpoint_config"  # ledger-only resource type (no cost events)
NOTEBOOK = "sagemaker_notebook"


def variants(req: Node) -> list[dict[str, Any]]:
    """The production variants of a CreateEndpointConfig request, as the ledger stores them."""
    out = []
    for variant in req.get("productionVariants").items():
        serverless = variant.get("serverlessConfig").present
        out.append(
            {
                "name": variant.get("variantName").text(),
                "instance_type": variant.get("instanceType").text(),
                "count": variant.get("initialInstanceCount").integer() or (0 if serverless else 1),
                "serverless": serverless,
            }
        )
    return out


def config_id(ctx: Ctx, name: str) -> str:
    return ids.sagemaker(ctx.region, ctx.account, "endpoint-config", name)


def _endpoint(ctx: Ctx, extra: dict[str, Any]) -> list[Draft]:
    req = ctx.req
    name = req.get("endpointName").text()
    config_name = req.get("endpointConfigName").text()
    bill = Bill(ctx.prices, ctx.region)
    config = ctx.known_resource(config_id(ctx, config_name)) if config_name else None
    found = config.attributes.get("variants") if config is not None else None
    instances, types = 0, []
    if not isinstance(found, (list, tuple)):
        bill.missing("unknown_endpoint_config")
    else:
        for variant in found:
            if not isinstance(variant, dict) or variant.get("serverless"):
                bill.missing("usage_based")
                continue
            itype, count = variant.get("instance_type"), variant.get("count") or 1
            if not isinstance(itype, str):
                bill.missing("unknown_instance_type")
                continue
            bill.hourly("sagemaker", itype, count, instance=True)
            instances += count
            types.append(itype)
    itype = types[0] if len(set(types)) == 1 else None
    resource_ids = (ids.sagemaker(ctx.region, ctx.account, "endpoint", name),) if name else ()
    return [
        draft(
            bill,
            ENDPOINT,
            resource_ids,
            instances or 1,
            "instance",
            instance_type=itype,
            family=family_of(itype),
            attributes={"endpoint_config": config_name, "instance_types": sorted(set(types)), **extra},
            pricing_extra={"confidence": "low"},
        )
    ]


def create_endpoint(ctx: Ctx) -> list[Draft]:
    return _endpoint(ctx, {})


def update_endpoint(ctx: Ctx) -> list[Draft]:
    name = ctx.req.get("endpointName").text()
    known = ctx.known_resource(ids.sagemaker(ctx.region, ctx.account, "endpoint", name)) if name else None
    return _endpoint(ctx, {"previous_hourly_cost": known.hourly_cost if known is not None else None})


def create_notebook_instance(ctx: Ctx) -> list[Draft]:
    req = ctx.req
    name = req.get("notebookInstanceName").text()
    itype = req.get("instanceType").text()
    bill = Bill(ctx.prices, ctx.region)
    if itype is None:
        bill.missing("unknown_instance_type")
    else:
        bill.hourly("sagemaker", itype, 1, instance=True)
    resource_ids = (ids.sagemaker(ctx.region, ctx.account, "notebook-instance", name),) if name else ()
    return [
        draft(
            bill,
            NOTEBOOK,
            resource_ids,
            1,
            "instance",
            instance_type=itype,
            family=family_of(itype),
            attributes={"volume_size_gib": req.get("volumeSizeInGB").number()},
            pricing_extra={"confidence": "low"},
        )
    ]


def start_notebook_instance(ctx: Ctx) -> list[Draft]:
    name = ctx.req.get("notebookInstanceName").text()
    if not name:
        return []
    return resume(ctx, ids.sagemaker(ctx.region, ctx.account, "notebook-instance", name), NOTEBOOK)
