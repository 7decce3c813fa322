"""Zombie scan (wiring): fetch with boto3, decide with pure*.py. Read-only: it never deletes or modifies anything.

For one account: DescribeRegions(AllRegions=True) from the home region, then every region whose OptInStatus is
`opt-in-not-required` or `opted-in` (a `not-opted-in` region is never called - R15). In each region the checks run
in `pure.ALL_CHECKS` order, one call per resource type and page (never one per resource); CloudWatch is read with
GetMetricData, up to 500 series per call. Listings several checks need (instances, addresses, NAT gateways) are
fetched once per region. The one call per resource is DescribeTargetHealth (the API takes one target group), made
only for target groups of load balancers that carry requests.

A failing call is recorded as a `RegionError(region, code, ...)` and the scan goes on: the rest of that region
still runs unless the code says the whole region is unreachable (`REGION_FATAL`), and other regions always run.
So an SCP denying EC2 in one region makes the run `partial`, not `failed` (R15). Throttling is retried with
exponential backoff; authorization errors never are. botocore's own retries are switched off in
`session_client_factory` so that this rule is the only one.

Expired credentials (`CREDENTIALS_EXPIRED`) end the account's scan where they are met: the session cannot sign
anything any more, so the regions after it are recorded as not scanned (one error each, no call) rather than
each called once to fail the same way. What completed before still counts; the run's `reason` names the account
and says the credentials expired.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from streams.prices.table import PriceTable, load_default_prices
from streams.zombies import pure, pure_compute, pure_targets
from streams.zombies.pure import (
    ALL_CHECKS,
    CheckThresholds,
    MetricQuery,
    MetricSeries,
    MetricWindow,
    Scope,
    Unavailable,
    Zombie,
)

ClientFactory = Callable[[str, str], Any]  # (service, region) -> boto3 client
RunStatus = Literal["ok", "partial", "failed"]

ENABLED_OPT_IN = frozenset({"opt-in-not-required", "opted-in"})
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "EC2ThrottledException",
    }
)
# Codes after which nothing else in the region can work (credentials, region not enabled, endpoint unreachable).
REGION_FATAL = frozenset(
    {
        "AuthFailure",
        "OptInRequired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "EndpointConnectionError",
        "NoCredentialsError",
    }
)
# Codes that mean the session's credentials expired (STS session token, or a request signed too long ago).
CREDENTIALS_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
NOT_CALLED = "(not called)"  # the operation of a region error recorded without a call
METRIC_QUERIES_PER_CALL = 500  # GetMetricData's limit
FILTER_VALUES_PER_CALL = 200  # EC2's limit on values of one filter

# (service, operation) -> (request token, response token, result key)
_PAGING: Mapping[tuple[str, str], tuple[str | None, str | None, str]] = {
    ("ec2", "DescribeRegions"): (None, None, "Regions"),
    ("ec2", "DescribeVolumes"): ("NextToken", "NextToken", "Volumes"),
    ("ec2", "DescribeSnapshots"): ("NextToken", "NextToken", "Snapshots"),
    ("ec2", "DescribeImages"): ("NextToken", "NextToken", "Images"),
    ("ec2", "DescribeLaunchTemplates"): ("NextToken", "NextToken", "LaunchTemplates"),
    ("ec2", "DescribeLaunchTemplateVersions"): ("NextToken", "NextToken", "LaunchTemplateVersions"),
    ("ec2", "DescribeAddresses"): (None, None, "Addresses"),
    ("ec2", "DescribeNatGateways"): ("NextToken", "NextToken", "NatGateways"),
    ("elb", "DescribeLoadBalancers"): ("Marker", "NextMarker", "LoadBalancerDescriptions"),
    ("elbv2", "DescribeLoadBalancers"): ("Marker", "NextMarker", "LoadBalancers"),
    ("elbv2", "DescribeTargetGroups"): ("Marker", "NextMarker", "TargetGroups"),
    ("elbv2", "DescribeTargetHealth"): (None, None, "TargetHealthDescriptions"),
    ("ec2", "DescribeInstances"): ("NextToken", "NextToken", "Reservations"),
    ("rds", "DescribeDBInstances"): ("Marker", "Marker", "DBInstances"),
}
# Instances worth listing: terminated ones bill nothing (and AWS keeps showing them for an hour).
LIVE_INSTANCES = {"Filters": [{"Name": "instance-state-name", "Values": ["running", "stopped"]}]}


@dataclass(frozen=True, slots=True)
class RegionError:
    region: str
    code: str
    operation: str
    check: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class ScanResult:
    zombies: tuple[Zombie, ...]  # every status; `found` is the report proper
    region_errors: tuple[RegionError, ...]
    status: RunStatus
    calls_made: int  # AWS calls sent, retries included
    regions_scanned: tuple[str, ...] = ()
    retries: int = 0
    # (region, check) pairs that ran to the end without any failed call: only there may an absent zombie be
    # called resolved (a denied or throttled check proves nothing about what it could not see).
    completed: tuple[tuple[str, str], ...] = ()
    reason: str = ""  # why the run is partial / failed, in a sentence naming the account ("" when ok)

    @property
    def found(self) -> list[Zombie]:
        return pure.only_zombies(self.zombies)


class _Failed(Exception):
    """A call that failed for good (not retried or out of retries); carries the AWS error code."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}")
        self.operation, self.code, self.message = operation, code, message


def session_client_factory(session: Any, *, connect_timeout: float = 10, read_timeout: float = 30) -> ClientFactory:
    """Clients from a boto3 Session (the tenant's credentials), one per (service, region), retries off."""
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra="dd0c-cost-zombies",
    )
    cache: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        key = (service, region)
        if key not in cache:
            cache[key] = session.client(service, region_name=region, config=config)
        return cache[key]

    return client


@dataclass
class _Caller:
    """Sends calls: counts them, retries throttling with backoff, turns every failure into `_Failed`."""

    clients: ClientFactory
    sleep: Callable[[float], None]
    max_attempts: int
    base_delay: float
    max_delay: float
    calls: int = 0
    retries: int = 0

    def call(self, service: str, region: str, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        method_name = xform_name(operation)
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            try:
                client = self.clients(service, region)
                return getattr(client, method_name)(**params)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code") or "ClientError")
                if code in THROTTLE_CODES and attempt < self.max_attempts:
                    self.retries += 1
                    self.sleep(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
                    continue
                raise _Failed(operation, code, str(error.get("Message") or "")) from None
            except BotoCoreError as exc:
                raise _Failed(operation, type(exc).__name__, str(exc)) from None

    def pages(self, service: str, region: str, operation: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every item of a listing, one call per page."""
        in_token, out_token, key = _PAGING[(service, operation)]
        items: list[dict[str, Any]] = []
        request = dict(params)
        while True:
            response = self.call(service, region, operation, request)
            items.extend(response.get(key) or ())
            token = response.get(out_token) if out_token else None
            if not token or in_token is None:
                return items
            request = {**params, in_token: token}

    def metrics(self, region: str, queries: Sequence[MetricQuery], window: MetricWindow) -> dict[str, MetricSeries]:
        """GetMetricData for `queries`, up to 500 per call, pages merged; the answer is keyed by `query.key`."""
        out: dict[str, MetricSeries] = {}
        for start in range(0, len(queries), METRIC_QUERIES_PER_CALL):
            batch = queries[start : start + METRIC_QUERIES_PER_CALL]
            request: dict[str, Any] = {
                "MetricDataQueries": [_metric_query(f"m{i}", q, window) for i, q in enumerate(batch)],
                "StartTime": window.start,
                "EndTime": window.end,
            }
            stamps: dict[str, list[datetime]] = {}
            values: dict[str, list[float]] = {}
            status: dict[str, str] = {}
            while True:
                response = self.call("cloudwatch", region, "GetMetricData", request)
                for result in response.get("MetricDataResults") or ():
                    qid = str(result.get("Id"))
                    stamps.setdefault(qid, []).extend(
                        t for t in (pure.as_datetime(x) for x in result.get("Timestamps") or ()) if t is not None
                    )
                    values.setdefault(qid, []).extend(float(v) for v in result.get("Values") or ())
                    status[qid] = str(result.get("StatusCode") or "Complete")
                token = response.get("NextToken")
                if not token:
                    break
                request = {**request, "NextToken": token}
            for i, query in enumerate(batch):
                qid = f"m{i}"
                code = status.get(qid, "Complete")  # a series CloudWatch has no data for may be left out
                out[query.key] = MetricSeries(
                    tuple(stamps.get(qid, ())), tuple(values.get(qid, ())), complete=code == "Complete", status=code
                )
        return out


def _metric_query(qid: str, query: MetricQuery, window: MetricWindow) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": query.namespace,
                "MetricName": query.metric,
                "Dimensions": [{"Name": n, "Value": v} for n, v in query.dimensions],
            },
            "Period": window.period_seconds,
            "Stat": query.stat,
        },
    }


@dataclass
class _Region:
    """One region's scan: the responses shared between checks are fetched once (NAT gateways: EIP and NAT)."""

    caller: _Caller
    scope: Scope
    now: datetime
    thresholds: CheckThresholds
    prices: PriceTable
    errors: list[RegionError] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    _nat: list[dict[str, Any]] | Unavailable | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def fail(self, failed: _Failed, check: str) -> Unavailable:
        self.errors.append(RegionError(self.scope.region, failed.code, failed.operation, check, failed.message))
        return Unavailable(failed.operation, failed.code)

    def optional(self, check: str, fetch: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]] | Unavailable:
        """A response the decision can do without (its absence makes zombies `unknown`); still an error."""
        try:
            return fetch()
        except _Failed as failed:
            if failed.code in REGION_FATAL:
                raise
            return self.fail(failed, check)

    def listing(self, service: str, operation: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.caller.pages(service, self.scope.region, operation, params or {})

    def nat_gateways(self) -> list[dict[str, Any]]:
        if self._nat is None:
            try:
                self._nat = self.listing("ec2", "DescribeNatGateways")
            except _Failed as failed:
                self._nat = Unavailable(failed.operation, failed.code)
                raise
        if isinstance(self._nat, Unavailable):
            raise _Failed(self._nat.operation, self._nat.code, "")
        return self._nat

    # -- checks: each fetches, then asks pure.py --------------------------------------------------------------
    def unattached_volumes(self) -> list[Zombie]:
        volumes = self.listing("ec2", "DescribeVolumes", {"Filters": [{"Name": "status", "Values": ["available"]}]})
        return pure.unattached_volumes(self.scope, volumes, self.now, self.thresholds, self.prices)

    def orphaned_snapshots(self) -> list[Zombie]:
        check = pure.CHECK_ORPHANED_SNAPSHOT
        snapshots = self.listing("ec2", "DescribeSnapshots", {"OwnerIds": ["self"]})
        candidates = pure.old_snapshots(snapshots, self.now, self.thresholds)
        if not candidates:
            return []
        # IncludeDisabled: a disabled AMI still holds its snapshots, and a plain DescribeImages hides it (R11).
        images = self.optional(
            check, lambda: self.listing("ec2", "DescribeImages", {"Owners": ["self"], "IncludeDisabled": True})
        )
        templates = self.optional(check, self._template_versions)
        volumes = self.optional(check, lambda: self._volumes(pure.snapshot_source_volumes(candidates)))
        return pure.orphaned_snapshots(
            self.scope, candidates, volumes, images, templates, self.now, self.thresholds, self.prices
        )

    def _template_versions(self) -> list[dict[str, Any]]:
        if not self.listing("ec2", "DescribeLaunchTemplates"):
            return []
        # Without a template id, this lists the latest and default version of every template in one paged call.
        return self.listing("ec2", "DescribeLaunchTemplateVersions", {"Versions": ["$Latest", "$Default"]})

    def _volumes(self, values: Sequence[str], name: str = "volume-id") -> list[dict[str, Any]]:
        # A filter (not VolumeIds) because VolumeIds fails the whole call on one deleted volume; 200 values a call.
        found: list[dict[str, Any]] = []
        for start in range(0, len(values), FILTER_VALUES_PER_CALL):
            chunk = list(values[start : start + FILTER_VALUES_PER_CALL])
            found.extend(self.listing("ec2", "DescribeVolumes", {"Filters": [{"Name": name, "Values": chunk}]}))
        return found

    def _once(self, name: str, fetch: Callable[[], Any]) -> Any:
        """A listing several checks share, fetched at most once per region (a failure is remembered too)."""
        if name not in self._cache:
            try:
                self._cache[name] = fetch()
            except _Failed as failed:
                self._cache[name] = failed
        found = self._cache[name]
        if isinstance(found, _Failed):
            raise found
        return found

    def addresses(self) -> list[dict[str, Any]]:
        return self._once("addresses", lambda: self.listing("ec2", "DescribeAddresses"))  # type: ignore[no-any-return]

    def instances(self) -> list[dict[str, Any]]:
        def fetch() -> list[dict[str, Any]]:
            reservations = self.listing("ec2", "DescribeInstances", LIVE_INSTANCES)
            return [i for r in reservations for i in r.get("Instances") or ()]

        return self._once("instances", fetch)  # type: ignore[no-any-return]

    def stopped_volumes(self) -> list[dict[str, Any]]:
        """Volumes attached to instances stopped long enough for either stopped-instance check."""
        days = min(self.thresholds.stopped_instance_days, self.thresholds.stopped_volume_days)
        ids = pure_compute.stopped_instance_ids(self.instances(), self.now, days)
        return self._once("stopped_volumes", lambda: self._volumes(ids, "attachment.instance-id"))  # type: ignore[no-any-return]

    def unassociated_eips(self) -> list[Zombie]:
        addresses = self.addresses()
        if not addresses:
            return []
        nats = self.optional(pure.CHECK_UNASSOCIATED_EIP, self.nat_gateways)
        return pure.unassociated_eips(self.scope, addresses, nats, self.prices)

    def idle_nat_gateways(self) -> list[Zombie]:
        nats = self.nat_gateways()
        window = pure.metric_window(self.now, self.thresholds.nat_lookback_days, self.thresholds.metric_period_seconds)
        series = self._series(pure.CHECK_IDLE_NAT, pure.nat_metric_queries(nats), window)
        return pure.idle_nat_gateways(self.scope, nats, series, window, self.thresholds, self.prices)

    def idle_load_balancers(self) -> list[Zombie]:
        check = pure.CHECK_IDLE_LB
        classic = self.optional(check, lambda: self.listing("elb", "DescribeLoadBalancers"))
        v2 = self.optional(check, lambda: self.listing("elbv2", "DescribeLoadBalancers"))
        if isinstance(classic, Unavailable) and isinstance(v2, Unavailable):
            return []
        classic = [] if isinstance(classic, Unavailable) else classic
        v2 = [] if isinstance(v2, Unavailable) else v2
        window = pure.metric_window(self.now, self.thresholds.lb_lookback_days, self.thresholds.metric_period_seconds)
        series = self._series(check, pure.lb_metric_queries(self.scope, classic, v2), window)
        idle = pure.idle_load_balancers(self.scope, classic, v2, series, window, self.thresholds, self.prices)
        return idle + self._lbs_without_targets(classic, v2, {z.resource_id for z in idle})

    def _lbs_without_targets(
        self, classic: list[dict[str, Any]], v2: list[dict[str, Any]], idle_ids: set[str]
    ) -> list[Zombie]:
        check = pure.CHECK_IDLE_LB
        classic_ids, v2_ids = pure_targets.lbs_to_check(self.scope, classic, v2, idle_ids, self.now, self.thresholds)
        if not classic_ids and not v2_ids:
            return []
        groups: list[dict[str, Any]] | Unavailable = []
        health: dict[str, list[dict[str, Any]] | Unavailable] = {}
        if v2_ids:
            groups = self.optional(check, lambda: self.listing("elbv2", "DescribeTargetGroups"))
            if not isinstance(groups, Unavailable):
                by_lb = pure_targets.target_groups_by_lb(groups)
                for arn in dict.fromkeys(tg for lb in v2_ids for tg in by_lb.get(lb, ())):
                    health[arn] = self.optional(
                        check, lambda arn=arn: self.listing("elbv2", "DescribeTargetHealth", {"TargetGroupArn": arn})
                    )
        return pure_targets.lbs_without_targets(
            self.scope, classic, v2, idle_ids, groups, health, self.now, self.thresholds, self.prices
        )

    def stopped_instances(self) -> list[Zombie]:
        check = pure.CHECK_STOPPED_INSTANCE
        instances = self.instances()
        if not any(i.get("State", {}).get("Name") == "stopped" for i in instances):
            return []
        addresses = self.optional(check, self.addresses)
        volumes = self.optional(check, self.stopped_volumes)
        return pure_compute.stopped_instances(
            self.scope,
            instances,
            [] if isinstance(addresses, Unavailable) else addresses,
            [] if isinstance(volumes, Unavailable) else volumes,
            self.now,
            self.thresholds,
            self.prices,
        )

    def stopped_instance_volumes(self) -> list[Zombie]:
        instances = self.instances()
        if not pure_compute.stopped_instance_ids(instances, self.now, self.thresholds.stopped_volume_days):
            return []
        volumes = self.stopped_volumes()
        return pure_compute.stopped_instance_volumes(
            self.scope, instances, volumes, self.now, self.thresholds, self.prices
        )

    def idle_ec2_instances(self) -> list[Zombie]:
        instances = self.instances()
        window = pure.metric_window(self.now, self.thresholds.ec2_lookback_days, self.thresholds.metric_period_seconds)
        queries = pure_compute.ec2_metric_queries(instances, self.thresholds)
        series = self._series(pure.CHECK_IDLE_EC2, queries, window)
        return pure_compute.idle_ec2_instances(self.scope, instances, series, window, self.thresholds, self.prices)

    def idle_rds_instances(self) -> list[Zombie]:
        databases = self.listing("rds", "DescribeDBInstances")
        window = pure.metric_window(self.now, self.thresholds.rds_lookback_days, self.thresholds.metric_period_seconds)
        queries = pure_compute.rds_metric_queries(databases, self.thresholds)
        series = self._series(pure.CHECK_IDLE_RDS, queries, window)
        return pure_compute.idle_rds_instances(self.scope, databases, series, window, self.thresholds, self.prices)

    def _series(
        self, check: str, queries: Sequence[MetricQuery], window: MetricWindow
    ) -> dict[str, MetricSeries] | Unavailable:
        if not queries:
            return {}
        found = self.optional(check, lambda: [self.caller.metrics(self.scope.region, queries, window)])
        return found if isinstance(found, Unavailable) else found[0]

    def run(self, checks: Sequence[str]) -> tuple[list[Zombie], bool]:
        """Zombies of every check that could run, and whether at least one check completed."""
        zombies: list[Zombie] = []
        completed = False
        for check in checks:
            errors_before = len(self.errors)
            try:
                zombies.extend(getattr(self, _METHOD[check])())
                completed = True
                if len(self.errors) == errors_before:
                    self.completed.append(check)
            except _Failed as failed:
                self.fail(failed, check)
                if failed.code in REGION_FATAL:
                    break
        return zombies, completed


_METHOD: Mapping[str, str] = {
    pure.CHECK_UNATTACHED_VOLUME: "unattached_volumes",
    pure.CHECK_ORPHANED_SNAPSHOT: "orphaned_snapshots",
    pure.CHECK_UNASSOCIATED_EIP: "unassociated_eips",
    pure.CHECK_IDLE_NAT: "idle_nat_gateways",
    pure.CHECK_IDLE_LB: "idle_load_balancers",
    pure.CHECK_STOPPED_INSTANCE: "stopped_instances",
    pure.CHECK_STOPPED_INSTANCE_VOLUME: "stopped_instance_volumes",
    pure.CHECK_IDLE_EC2: "idle_ec2_instances",
    pure.CHECK_IDLE_RDS: "idle_rds_instances",
}


def enabled_regions(regions: Iterable[Mapping[str, Any]]) -> list[str]:
    """Region names from DescribeRegions(AllRegions=True) that may be called, in response order."""
    return [str(r["RegionName"]) for r in regions if r.get("RegionName") and r.get("OptInStatus") in ENABLED_OPT_IN]


def scan_account(
    clients: ClientFactory,
    *,
    tenant: str,
    account_id: str,
    now: datetime,
    thresholds: CheckThresholds | None = None,
    prices: PriceTable | None = None,
    checks: Sequence[str] = ALL_CHECKS,
    regions: Iterable[str] | None = None,
    home_region: str = "us-east-1",
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 20.0,
) -> ScanResult:
    """Hunt one account's zombies in every enabled region (or the enabled ones among `regions`).

    `now` is the hunt's clock (ages and metric windows are measured from it). Read-only: only Describe* and
    GetMetricData calls are made.
    """
    unknown = [c for c in checks if c not in _METHOD]
    if unknown:
        raise pure.ZombieError(f"unknown zombie checks: {unknown}")
    limits = thresholds or CheckThresholds()
    table = prices or load_default_prices()
    caller = _Caller(clients, sleep, max(1, max_attempts), base_delay, max_delay)
    errors: list[RegionError] = []
    try:
        listed = caller.pages("ec2", home_region, "DescribeRegions", {"AllRegions": True})
    except _Failed as failed:
        errors.append(RegionError(home_region, failed.code, failed.operation, None, failed.message))
        return ScanResult((), tuple(errors), "failed", caller.calls, (), caller.retries,
                          reason=run_reason(account_id, errors))
    enabled = enabled_regions(listed)
    if regions is not None:
        wanted = list(dict.fromkeys(regions))
        for name in wanted:
            if name not in enabled:  # asked for, but disabled or unknown: say so rather than call it
                errors.append(RegionError(name, "RegionNotEnabled", "DescribeRegions"))
        enabled = [r for r in enabled if r in wanted]
    zombies: list[Zombie] = []
    completed_any = False
    finished: list[tuple[str, str]] = []
    expired: RegionError | None = None
    for region in enabled:
        if expired is not None:  # nothing can be signed any more: record the region, do not call it
            errors.append(RegionError(region, expired.code, NOT_CALLED, None,
                                      f"not scanned: the credentials of account {account_id} had expired"))
            continue
        scan = _Region(caller, Scope(tenant, account_id, region), now, limits, table)
        found, completed = scan.run(checks)
        zombies.extend(found)
        errors.extend(scan.errors)
        finished.extend((region, check) for check in scan.completed)
        completed_any = completed_any or completed
        expired = next((e for e in scan.errors if e.code in CREDENTIALS_EXPIRED), None)
    status: RunStatus = "ok"
    if errors:
        status = "partial" if completed_any else "failed"
    return ScanResult(
        tuple(zombies), tuple(errors), status, caller.calls, tuple(enabled), caller.retries, tuple(finished),
        run_reason(account_id, errors),
    )


def run_reason(account_id: str, errors: Sequence[RegionError]) -> str:
    """One sentence for a run with errors ("" without): expired credentials first, else each code and region."""
    if not errors:
        return ""
    expired = next((e for e in errors if e.code in CREDENTIALS_EXPIRED), None)
    if expired is not None:
        lost = [e.region for e in errors if e.code in CREDENTIALS_EXPIRED and e.operation != "DescribeRegions"]
        where = f"regions not scanned: {', '.join(dict.fromkeys(lost))}" if lost else "nothing scanned"
        return (f"the credentials of account {account_id} expired ({expired.code} from {expired.operation} in "
                f"{expired.region}); {where}")
    where: dict[str, list[str]] = {}
    for e in errors:
        regions = where.setdefault(e.code, [])
        if e.region not in regions:
            regions.append(e.region)
    return f"account {account_id}: " + "; ".join(f"{code} in {', '.join(rs)}" for code, rs in where.items())
