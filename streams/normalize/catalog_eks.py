"""EKS: CreateCluster ($/hour per cluster, `eks` cluster_hour — $0.10 in the shipped snapshot).

CreateNodegroup creates no cost event: its instances arrive as RunInstances launched by Auto Scaling and are
priced there, so nothing is counted twice. Extended-support surcharges depend on the Kubernetes version's age at
billing time, which the create call cannot tell: left out (`pricing["basis"]="standard_support"`).
"""

from __future__ import annotations

from streams.normalize import ids
from streams.normalize.draft import Bill, Ctx, Draft, draft

CLUSTER = "eks_cluster"


def create_cluster(ctx: Ctx) -> list[Draft]:
    cluster = ctx.resp.get("cluster")
    name = cluster.get("name").text() or ctx.req.get("name").text()
    bill = Bill(ctx.prices, ctx.region)
    bill.hourly("eks", "cluster_hour", 1)
    attrs = {"version": cluster.get("version").text() or ctx.req.get("version").text(), "name": name}
    resource_ids = (ids.eks_cluster(ctx.region, ctx.account, name),) if name else ()
    return [draft(bill, CLUSTER, resource_ids, 1, "cluster", attributes=attrs, basis="standard_support")]
