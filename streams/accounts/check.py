"""`dd0c-cost accounts check ACCOUNT`: try each permission dd0c/cost needs with a harmless read, name the missing.

What a probe can show: a call that AWS refuses with an authorization error (AccessDenied, UnauthorizedOperation,
...) proves the permission is missing; a call that succeeds proves it is granted for that call's resource. What it
cannot show: sqs:ReceiveMessage / sqs:DeleteMessage are not tried (receiving would hide a notification from the
poller for a while; deleting loses it) - only sqs:GetQueueAttributes is; permissions on other regions or on objects
the probe did not touch; an SCP that starts denying later. s3:GetObject is tried on one object under the account's
trail folder, or on a key that does not exist (NoSuchKey = allowed, AccessDenied = missing) when the folder is
empty; without s3:ListBucket, S3 answers AccessDenied for a missing key either way, and the probe says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ops.settings import Settings, load_settings
from streams.accounts.crypto import SecretBox
from streams.accounts.model import Account
from streams.accounts.session import boto3_session, identity_mismatch

Outcome = Literal["ok", "missing", "error", "not tried"]

DENIED = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden",
    "UnauthorizedAccess", "403",
})
BAD_CREDENTIALS = frozenset({
    "InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AuthFailure", "ExpiredToken",
    "UnrecognizedClientException",
})


@dataclass(frozen=True, slots=True)
class ProbeResult:
    action: str  # the IAM action, e.g. "s3:GetObject"
    purpose: str  # "poller" | "zombies" | "access"
    outcome: Outcome
    detail: str = ""


@dataclass
class CheckReport:
    tenant: str
    account_id: str
    identity: str = ""  # the ARN the calls ran as (sts:GetCallerIdentity)
    results: list[ProbeResult] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [r.action for r in self.results if r.outcome == "missing"]

    @property
    def ok(self) -> bool:
        return all(r.outcome in ("ok", "not tried") for r in self.results)


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))


def _message(exc: ClientError) -> str:
    """The error's message on one line, cut short (an unparsed error body can be a whole XML document)."""
    text = " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())
    return text if len(text) <= 200 else text[:199] + "…"


def _try(report: CheckReport, action: str, purpose: str, call: Callable[[], Any],
         allowed_codes: frozenset[str] = frozenset()) -> Any:
    """Run one probe and record it; returns the call's response, or None when it failed."""
    try:
        response = call()
    except ClientError as exc:
        code = _code(exc)
        if code in allowed_codes:  # an answer only an allowed caller gets (NoSuchKey for GetObject)
            report.results.append(ProbeResult(action, purpose, "ok", f"allowed ({code})"))
            return None
        outcome: Outcome = "missing" if code in DENIED else "error"
        report.results.append(ProbeResult(action, purpose, outcome, f"{code}: {_message(exc)}"))
        return None
    except BotoCoreError as exc:
        report.results.append(ProbeResult(action, purpose, "error", str(exc)))
        return None
    report.results.append(ProbeResult(action, purpose, "ok"))
    return response


def check_account(
    account: Account,
    settings: Settings | None = None,
    *,
    box: SecretBox | None = None,
    base: boto3.Session | None = None,
    region: str | None = None,
    now: datetime | None = None,
) -> CheckReport:
    """Probe every permission in streams.accounts.policy for `account` (synchronous: boto3)."""
    s = settings or load_settings()
    report = CheckReport(tenant=account.tenant, account_id=account.account_id)
    try:
        session = boto3_session(account, s, box=box, base=base, region=region)
    except ClientError as exc:
        code = _code(exc)
        outcome: Outcome = "missing" if code in DENIED else "error"
        report.results.append(ProbeResult("sts:AssumeRole", "access", outcome,
                                          f"{code} assuming {account.role_arn}: {_message(exc)}"))
        return report
    if account.auth == "role":
        report.results.append(ProbeResult("sts:AssumeRole", "access", "ok", f"assumed {account.role_arn}"))
    home = region or session.region_name or "us-east-1"
    identity = _try(report, "sts:GetCallerIdentity", "access", lambda: session.client("sts").get_caller_identity())
    if identity is not None:
        report.identity = identity.get("Arn", "")
        report.results.pop()  # needs no permission: only worth showing when it fails (bad credentials)
        wrong = identity_mismatch(identity, account.account_id)
        if wrong is not None:
            report.results.append(ProbeResult("sts:GetCallerIdentity", "access", "error", str(wrong)))
            return report
    elif report.results[-1].detail.split(":")[0] in BAD_CREDENTIALS:
        return report  # nothing else can work with credentials AWS does not accept
    _poller(report, account, session)
    _zombies(report, session, home, now or datetime.now(UTC))
    return report


def _poller(report: CheckReport, account: Account, session: boto3.Session) -> None:
    trail = account.trail
    if trail.bucket is None:
        for action in ("s3:ListBucket", "s3:GetObject"):
            report.results.append(ProbeResult(action, "poller", "not tried", "no trail bucket registered"))
    else:
        s3 = session.client("s3")
        root = trail.account_root(account.account_id)
        listed = _try(report, "s3:ListBucket", "poller",
                      lambda: s3.list_objects_v2(Bucket=trail.bucket, Prefix=root, MaxKeys=1))
        key = (listed or {}).get("Contents", [{}])[0].get("Key") if listed else None
        if key is not None:
            _try(report, "s3:GetObject", "poller",
                 lambda: s3.get_object(Bucket=trail.bucket, Key=key, Range="bytes=0-0"))
        else:
            probe = f"{root}dd0c-cost-permission-probe"
            _try(report, "s3:GetObject", "poller", lambda: s3.get_object(Bucket=trail.bucket, Key=probe),
                 allowed_codes=frozenset({"NoSuchKey", "404"}))
            last = report.results[-1]
            if last.outcome == "missing" and listed is None:
                report.results[-1] = ProbeResult(
                    last.action, last.purpose, "missing",
                    f"{last.detail} (no object to read, and without s3:ListBucket S3 says AccessDenied for a missing "
                    "key too: grant s3:ListBucket and check again to be sure)",
                )
    if trail.queue_url is None:
        report.results.append(ProbeResult("sqs:GetQueueAttributes", "poller", "not tried", "no notification queue"))
    else:
        sqs = session.client("sqs")
        _try(report, "sqs:GetQueueAttributes", "poller",
             lambda: sqs.get_queue_attributes(QueueUrl=trail.queue_url, AttributeNames=["QueueArn"]))


def _zombies(report: CheckReport, session: boto3.Session, region: str, now: datetime) -> None:
    ec2 = session.client("ec2", region_name=region)
    elb = session.client("elb", region_name=region)
    elbv2 = session.client("elbv2", region_name=region)
    cloudwatch = session.client("cloudwatch", region_name=region)
    probes: list[tuple[str, Callable[[], Any]]] = [
        ("ec2:DescribeRegions", lambda: ec2.describe_regions(AllRegions=True)),
        ("ec2:DescribeVolumes", lambda: ec2.describe_volumes(MaxResults=5)),
        ("ec2:DescribeSnapshots", lambda: ec2.describe_snapshots(OwnerIds=["self"], MaxResults=5)),
        ("ec2:DescribeImages", lambda: ec2.describe_images(Owners=["self"])),
        ("ec2:DescribeLaunchTemplates", lambda: ec2.describe_launch_templates(MaxResults=5)),
        ("ec2:DescribeLaunchTemplateVersions",
         lambda: ec2.describe_launch_template_versions(Versions=["$Latest"], MaxResults=5)),
        ("ec2:DescribeAddresses", lambda: ec2.describe_addresses()),
        ("ec2:DescribeNatGateways", lambda: ec2.describe_nat_gateways(MaxResults=5)),
        ("elasticloadbalancing:DescribeLoadBalancers", lambda: (elb.describe_load_balancers(PageSize=1),
                                                                elbv2.describe_load_balancers(PageSize=1))),
        ("cloudwatch:GetMetricData", lambda: cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "probe", "MetricStat": {
                "Metric": {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization"}, "Period": 300, "Stat": "Average",
            }}],
            StartTime=now - timedelta(minutes=10), EndTime=now,
        )),
    ]
    for action, call in probes:
        _try(report, action, "zombies", call)


def format_check(report: CheckReport) -> str:
    who = f" as {report.identity}" if report.identity else ""
    lines = [f"account {report.account_id} (tenant {report.tenant}){who}"]
    width = max([len(r.action) for r in report.results] + [6])
    for r in report.results:
        lines.append(f"  {r.action.ljust(width)}  {r.purpose:<8} {r.outcome:<9} {r.detail}".rstrip())
    if report.missing:
        lines.append("missing: " + ", ".join(report.missing))
    elif report.ok:
        lines.append("every permission tried is granted")
    else:
        lines.append("some probes failed for another reason than a missing permission (see above)")
    return "\n".join(lines)
