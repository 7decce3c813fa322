"""Properties of normalize: whatever shape a catalog call's fields take, the answer is events or Rejected."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import Rejected
from streams.ledger.pure import apply, changes
from streams.normalize.catalog import CATALOG, RESOURCE_TYPES
from streams.normalize.pure import normalize, observations
from tests.unit.test_normalize_support import call, entry, prices

# Field names the catalog reads, so random documents actually reach the handlers' code paths.
_KEYS = [
    "instancesSet",
    "items",
    "item",
    "instanceId",
    "instanceType",
    "minCount",
    "maxCount",
    "placement",
    "tenancy",
    "blockDeviceMapping",
    "ebs",
    "volumeSize",
    "volumeType",
    "iops",
    "throughput",
    "size",
    "volumeId",
    "snapshotId",
    "allocationId",
    "publicIpv4Pool",
    "natGateway",
    "CreateNatGatewayResponse",
    "natGatewayId",
    "vpcEndpoint",
    "vpcEndpointType",
    "subnetIdSet",
    "type",
    "name",
    "loadBalancers",
    "loadBalancerArn",
    "loadBalancerName",
    "dBInstanceIdentifier",
    "dBInstanceClass",
    "engine",
    "multiAZ",
    "allocatedStorage",
    "storageType",
    "cacheNodeType",
    "numCacheNodes",
    "nodeType",
    "numberOfNodes",
    "clusterConfig",
    "instanceCount",
    "eBSOptions",
    "provisionedThroughput",
    "readCapacityUnits",
    "writeCapacityUnits",
    "billingMode",
    "brokerNodeGroupInfo",
    "numberOfBrokerNodes",
    "clusterArn",
    "endpointName",
    "endpointConfigName",
    "productionVariants",
    "value",
]
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        ["m5.large", "gp3", "io2", "100", "abc", "spot", "dedicated", "Interface", "mysql", "", "db.m5.large"]
    )
)
_docs = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), children, max_size=4),
    max_leaves=15,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CATALOG)), _docs, _docs)
def test_catalog_calls_never_raise(key: tuple[str, str], request: Any, response: Any) -> None:
    source, name = key
    e = entry(call(source, name, request, response))
    result = normalize(e, prices(), {})
    if isinstance(result, Rejected):
        assert "eventID evt-1" in result.reason
        return
    for event in result:
        assert event.resource_type in RESOURCE_TYPES
        assert event.hourly_cost is None or event.hourly_cost > 0  # never 0.0
        assert (event.hourly_cost is None) == (event.cost_status == "unpriced")
        assert event.hourly_cost is not None or event.unpriced_reason
    observations(e, result)
    for change in changes(e, result):
        assert apply(None, change) is not None
