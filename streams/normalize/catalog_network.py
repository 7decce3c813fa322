"""Network: AllocateAddress (public IPv4 / Elastic IP), CreateNatGateway, CreateVpcEndpoint, CreateLoadBalancer.

* Elastic IP: every public IPv4 address bills per hour, attached or idle (`vpc` public_ipv4_in_use_hour, same
  price idle). Addresses from your own pool (BYOIP: `publicIpv4Pool` other than "amazon") are not billed: no
  event. Id: the allocation id (`publicIp` for EC2-Classic addresses).
* NAT gateway: hourly per gateway (`nat` nat_gateway_hour); data processing is usage and not in the hourly
  figure. The invictus corpus writes the XML-style `responseElements.CreateNatGatewayResponse.natGateway`; the
  flat `responseElements.natGateway` is read too.
* VPC endpoint: only the Interface type bills by the hour, per endpoint per AZ (one AZ per subnet); Gateway
  endpoints are free and GatewayLoadBalancer endpoints are not in the catalog. Both the XML-style wrappers
  (`CreateVpcEndpointRequest` / `CreateVpcEndpointResponse`) and flat shapes are read.
* Load balancer: hourly per load balancer (`elb` alb_hour / nlb_hour / clb_hour, us-east-1 only: elsewhere the
  labelled regional estimate, `estimated_fallback` with `pricing["basis"]="regional_fallback"` and
  `pricing["base_basis"]="hourly_excluding_lcu"`); LCU charges are usage and left out
  (`pricing["basis"]="hourly_excluding_lcu"` in us-east-1). Classic is the `elasticloadbalancing`
  2012-06-01 API: no `type`, identified by `loadBalancerName`. Application/network/gateway come from `type`
  (absent on the 2015-12-01 API means application). Gateway load balancers have no hourly price in the snapshot:
  unpriced, `unknown_sku`. `family` is the load balancer type.
"""

from __future__ import annotations

from streams.normalize import ids
from streams.normalize.draft import Bill, Ctx, Draft, draft

ELASTIC_IP = "elastic_ip"
NAT_GATEWAY = "nat_gateway"
VPC_ENDPOINT = "vpc_endpoint"
LOAD_BALANCER = "load_balancer"


def allocate_address(ctx: Ctx) -> list[Draft]:
    resp = ctx.resp
    pool = resp.get("publicIpv4Pool").text()
    if pool is not None and pool != "amazon":
        return []  # your own addresses (BYOIP) carry no public IPv4 charge
    address_id = resp.get("allocationId").text() or resp.get("publicIp").text()
    bill = Bill(ctx.prices, ctx.region)
    bill.hourly("vpc", "public_ipv4_in_use_hour", 1)
    attrs = {"public_ip": resp.get("publicIp").text(), "domain": resp.get("domain").text()}
    return [draft(bill, ELASTIC_IP, (address_id,) if address_id else (), 1, "address", attributes=attrs)]


def create_nat_gateway(ctx: Ctx) -> list[Draft]:
    gateway = ctx.resp.first(("CreateNatGatewayResponse", "natGateway"), ("natGateway",))
    gateway_id = gateway.get("natGatewayId").text()
    bill = Bill(ctx.prices, ctx.region)
    bill.hourly("nat", "nat_gateway_hour", 1)
    attrs = {
        "connectivity_type": gateway.get("connectivityType").text(),
        "subnet_id": gateway.get("subnetId").text(),
        "vpc_id": gateway.get("vpcId").text(),
    }
    return [draft(bill, NAT_GATEWAY, (gateway_id,) if gateway_id else (), 1, "gateway", attributes=attrs)]


def create_vpc_endpoint(ctx: Ctx) -> list[Draft]:
    endpoint = ctx.resp.first(("CreateVpcEndpointResponse", "vpcEndpoint"), ("vpcEndpoint",))
    request = ctx.req.first(("CreateVpcEndpointRequest",), ())
    kind = (
        endpoint.get("vpcEndpointType").text()
        or request.get("VpcEndpointType").text()
        or request.get("vpcEndpointType").text()
        or "Gateway"  # the API default
    )
    if kind.lower() != "interface":
        return []  # Gateway endpoints are free; GatewayLoadBalancer endpoints are not in the catalog
    subnets = (
        endpoint.get("subnetIdSet").strings()
        or request.get("SubnetId").strings()
        or request.get("subnetIds").strings()
        or request.get("subnetId").strings()
    )
    zones = max(1, len(set(subnets)))
    endpoint_id = endpoint.get("vpcEndpointId").text()
    bill = Bill(ctx.prices, ctx.region)
    bill.hourly("vpc", "interface_endpoint_hour_per_az", zones)
    attrs = {
        "endpoint_type": "Interface",
        "service_name": endpoint.get("serviceName").text() or request.get("ServiceName").text(),
        "availability_zones": zones,
    }
    return [draft(bill, VPC_ENDPOINT, (endpoint_id,) if endpoint_id else (), zones, "endpoint-az", attributes=attrs)]


_LB_SKUS = {"application": "alb_hour", "network": "nlb_hour", "classic": "clb_hour"}


def create_load_balancer(ctx: Ctx) -> list[Draft]:
    req, resp = ctx.req, ctx.resp
    api_version = ctx.record.get("apiVersion").text()
    kind = req.get("type").text()
    balancers = resp.get("loadBalancers").items()
    if kind is None:
        v2 = api_version == "2015-12-01" or bool(balancers) or req.get("name").present
        kind = "application" if v2 else "classic"
    kind = kind.lower()
    if kind == "classic":
        name = req.get("loadBalancerName").text()
        resource_id = ids.classic_load_balancer(ctx.region, ctx.account, name) if name else None
    else:
        first = balancers[0] if balancers else None
        resource_id = first.get("loadBalancerArn").text() if first is not None else None
        name = req.get("name").text()
    bill = Bill(ctx.prices, ctx.region)
    sku = _LB_SKUS.get(kind)
    if sku is None:
        bill.missing("unknown_sku")
    else:
        bill.hourly("elb", sku, 1)
    attrs = {"load_balancer_type": kind, "name": name, "scheme": req.get("scheme").text()}
    return [
        draft(
            bill,
            LOAD_BALANCER,
            (resource_id,) if resource_id else (),
            1,
            "load_balancer",
            family=kind,
            attributes=attrs,
            basis="hourly_excluding_lcu",
        )
    ]
