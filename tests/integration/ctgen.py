"""A small generator of CloudTrail EC2 records (RunInstances / TerminateInstances / Describe*) for runner tests.

Deterministic for a seed. Records have the shape CloudTrail delivers (responseElements.instancesSet, epoch-ms
launchTime, userIdentity of an IAM user); `entries()` wraps them as log entries without needing the reader.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import LogEntry, LogKind

USERS = ("alice", "bob", "carol")
ACCOUNTS = ("111122223333", "444455556666")
TYPES = ("m5.large", "m5.large", "m5.large", "c5.xlarge", "t3.micro", "r5.2xlarge")


def event_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def instance_id(n: int, i: int) -> str:
    return f"i-{n:011x}{i:06x}"


def _identity(account: str, user: str) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{user.upper():0<16}",
        "arn": f"arn:aws:iam::{account}:user/{user}",
        "accountId": account,
        "accessKeyId": "AKIAEXAMPLE000000001",
        "userName": user,
    }


def _base(n: int, name: str, account: str, user: str, at: datetime, region: str, read_only: bool) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": _identity(account, user),
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64",
        "requestID": f"11111111-0000-4000-8000-{n:012d}",
        "eventID": event_id(n),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


def run_instances(
    n: int,
    *,
    at: datetime,
    account: str = ACCOUNTS[0],
    user: str = "alice",
    instance_type: str = "m5.large",
    count: int = 1,
    region: str = "us-east-1",
    error: str | None = None,
) -> dict[str, Any]:
    record = _base(n, "RunInstances", account, user, at, region, False)
    record["requestParameters"] = {
        "instancesSet": {"items": [{"imageId": "ami-0abc1234def567890", "minCount": count, "maxCount": count}]},
        "instanceType": instance_type,
        "monitoring": {"enabled": False},
    }
    if error:
        record["errorCode"] = error
        record["errorMessage"] = "You have requested more vCPU capacity than your current vCPU limit allows."
        record["responseElements"] = None
        return record
    launch_ms = int(at.timestamp() * 1000)
    record["responseElements"] = {
        "requestId": record["requestID"],
        "reservationId": f"r-{n:017x}",
        "ownerId": account,
        "instancesSet": {
            "items": [
                {
                    "instanceId": instance_id(n, i),
                    "imageId": "ami-0abc1234def567890",
                    "instanceState": {"code": 0, "name": "pending"},
                    "amiLaunchIndex": i,
                    "instanceType": instance_type,
                    "launchTime": launch_ms,
                    "placement": {"availabilityZone": f"{region}a", "tenancy": "default"},
                    "monitoring": {"state": "disabled"},
                    "architecture": "x86_64",
                    "rootDeviceType": "ebs",
                }
                for i in range(count)
            ]
        },
    }
    return record


def terminate_instances(
    n: int, ids: list[str], *, at: datetime, account: str = ACCOUNTS[0], user: str = "bob", region: str = "us-east-1"
) -> dict[str, Any]:
    record = _base(n, "TerminateInstances", account, user, at, region, False)
    record["requestParameters"] = {"instancesSet": {"items": [{"instanceId": i} for i in ids]}}
    record["responseElements"] = {
        "requestId": record["requestID"],
        "instancesSet": {
            "items": [
                {
                    "instanceId": i,
                    "currentState": {"code": 32, "name": "shutting-down"},
                    "previousState": {"code": 16, "name": "running"},
                }
                for i in ids
            ]
        },
    }
    return record


def describe_instances(n: int, *, at: datetime, account: str = ACCOUNTS[0], user: str = "alice") -> dict[str, Any]:
    record = _base(n, "DescribeInstances", account, user, at, "us-east-1", True)
    record["requestParameters"] = {"instancesSet": {}, "filterSet": {}}
    record["responseElements"] = None
    return record


def generated_records(count: int, *, seed: int = 7, start: datetime | None = None) -> list[dict[str, Any]]:
    """`count` records in eventTime order: launches (1-3 instances), terminations of running ones, a few failed
    launches and read-only noise, across two accounts and three users."""
    rng = random.Random(seed)
    at = start or datetime(2024, 5, 1, tzinfo=UTC)
    running: dict[str, list[str]] = {a: [] for a in ACCOUNTS}
    records = []
    for n in range(1, count + 1):
        at += timedelta(seconds=rng.randint(1, 600))
        account = rng.choice(ACCOUNTS)
        user = rng.choice(USERS)
        roll = rng.random()
        if roll < 0.15:
            records.append(describe_instances(n, at=at, account=account, user=user))
        elif roll < 0.20:
            records.append(run_instances(n, at=at, account=account, user=user, instance_type="p4d.24xlarge",
                                         error="Client.VcpuLimitExceeded"))
        elif roll < 0.55 and running[account]:
            k = min(len(running[account]), rng.randint(1, 2))
            ids = [running[account].pop(rng.randrange(len(running[account]))) for _ in range(k)]
            records.append(terminate_instances(n, ids, at=at, account=account, user=user))
        else:
            record = run_instances(n, at=at, account=account, user=user, instance_type=rng.choice(TYPES),
                                   count=rng.choice((1, 1, 1, 2, 3)))
            running[account].extend(i["instanceId"] for i in record["responseElements"]["instancesSet"]["items"])
            records.append(record)
    return records


def entries(records: list[dict[str, Any]], *, tenant: str = "default", ingested_at: datetime | None = None,
            source: str = "generated") -> list[LogEntry]:
    """Log entries for records, as the reader would make them (ingested 5 minutes after each event by default)."""
    out = []
    for r in records:
        at = datetime.fromisoformat(r["eventTime"])
        out.append(
            LogEntry(
                tenant=tenant,
                event_id=r["eventID"],
                account_id=r["recipientAccountId"],
                event_time=at,
                ingested_at=ingested_at or at + timedelta(minutes=5),
                event_source=r["eventSource"],
                event_name=r["eventName"],
                region=r["awsRegion"],
                read_only=bool(r["readOnly"]),
                kind=LogKind.CLOUDTRAIL,
                record=r,
                source=source,
            )
        )
    return out


# Every projection table, row by row, without the columns that legitimately differ between two runs
# (updated_at wall-clock stamps, BIGSERIAL ids that rolled-back transactions consume).
PROJECTION_QUERIES = {
    "cost_events": "SELECT id, tenant_id, account_id, data, severity, created_at, event_id, ordinal, seq, event_time,"
    " resource_type, region, hourly_cost, priced FROM cost_events ORDER BY id",
    "baselines": "SELECT tenant_id, account_id, resource_type, mean_hourly_cost, stddev, event_count, observed_actors,"
    " state, seq FROM baselines ORDER BY tenant_id, account_id, resource_type",
    "anomalies": "SELECT id, tenant_id, account_id, resource_type, severity, severity_rank, event_time, detected_at,"
    " hourly_cost, backfill, seq, data FROM anomalies ORDER BY feed_id",
    "resources": "SELECT tenant_id, account_id, resource_id, resource_type, region, state, hourly_cost, opened_at,"
    " changed_at, seq, data FROM resources ORDER BY tenant_id, account_id, resource_id",
    "fold_metrics": "SELECT tenant_id, metric, label, value FROM fold_metrics ORDER BY tenant_id, metric, label",
    "checkpoints": "SELECT runner, position, applied FROM checkpoints ORDER BY runner",
    "dead_letters": "SELECT tenant_id, stage, source, locator, reason, raw FROM dead_letters ORDER BY id",
}


async def projection_rows(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {table: [tuple(r) for r in await conn.fetch(sql)] for table, sql in PROJECTION_QUERIES.items()}
