"""Credentials that expire, over HTTP: the fault proxy refuses every request signed with one account's access key
(RequestExpired / ExpiredToken, as AWS answers an expired session token), from the first request or after N.

The run is recorded `partial` / `failed` with a reason naming the account and saying "expired"; what completed
before still counts, other accounts are scanned as usual, and no open zombie is resolved by what could not run.
"""

from __future__ import annotations

import random

import boto3
import pytest

from projections.zombies import queries
from tests.integration.zombies.conftest import Aws, FaultProxy
from tests.integration.zombies.seed import DAY, TOTAL_WASTE, seed
from tests.integration.zombies.test_hunt import TENANT, drain, hunt, pool_for

BOTH = ("us-east-1", "us-west-2")


async def test_credentials_expiring_mid_scan_keep_what_completed(
    aws: Aws, proxy: FaultProxy, database_url: str
) -> None:
    """A clean scan of us-east-1 + us-west-2 opens ten zombies (the nine seeded, $85.757, and a 10 GiB gp2 volume in
    us-west-2, $1.00). Both volumes are deleted; the next day's scan loses its credentials right after us-east-1
    (the proxy lets exactly us-east-1's calls through, then answers RequestExpired): `partial`, one refused call,
    the us-east-1 volume resolved (its check completed), the us-west-2 one still open."""
    seeded = seed(aws)
    now = seeded.hunt_now
    west = aws.client("ec2", "us-west-2")
    west_vol = west.create_volume(Size=10, VolumeType="gp2", AvailabilityZone="us-west-2a")["VolumeId"]
    async with pool_for(database_url) as pool:
        first = await hunt(pool, aws, now, endpoint=proxy.url, regions=BOTH)
        await drain(database_url)
        assert (first.result.status, first.result.regions_scanned, len(first.result.found)) == ("ok", BOTH, 10)
        # DescribeRegions and every us-east-1 call are signed for us-east-1; us-west-2 comes after them.
        east_calls = sum(1 for region, _, _ in proxy.seen if region == "us-east-1")
        assert first.result.calls_made == len(proxy.seen) > east_calls

        aws.client("ec2").delete_volume(VolumeId=seeded.zombies["unattached_ebs_volume"])
        west.delete_volume(VolumeId=west_vol)
        rule = proxy.expire(aws.credentials["aws_access_key_id"], after=east_calls)
        report = await hunt(pool, aws, now + DAY, endpoint=proxy.url, regions=BOTH)
        await drain(database_url)

        result = report.result
        assert result.status == "partial"
        assert [(e.region, e.code, e.operation) for e in result.region_errors] == [
            ("us-west-2", "RequestExpired", "DescribeVolumes")]
        assert (rule.hits, result.calls_made) == (1, east_calls + 1)  # nothing more sent with the dead session
        assert result.reason == (
            f"the credentials of account {aws.account_id} expired (RequestExpired from DescribeVolumes in "
            "us-west-2); regions not scanned: us-west-2")
        east = {c: r for c, r in seeded.zombies.items() if c != "unattached_ebs_volume"}
        assert sorted((z.check, z.resource_id) for z in result.found) == sorted(east.items())
        assert report.resolved == 1  # the us-east-1 volume: its check ran to the end

        rows = await queries.list_zombies(pool, TENANT, status="all", now=now + DAY, limit=100)
        status = {r["resource_id"]: r["status"] for r in rows}
        assert status.pop(seeded.zombies["unattached_ebs_volume"]) == "resolved"
        assert status == {**{rid: "open" for rid in east.values()}, west_vol: "open"}
        totals = await queries.zombie_totals(pool, TENANT, now=now + DAY)
        assert (totals["count"], totals["monthly_waste_usd"]) == (9, pytest.approx(TOTAL_WASTE - 8.00 + 1.00))

        scans = await queries.list_scans(pool, TENANT)
        assert [(s["status"], s["zombies_found"], s["resolved"]) for s in scans] == [("partial", 8, 1), ("ok", 10, 0)]
        assert scans[0]["reason"] == result.reason and scans[1]["reason"] == ""
        assert [(e["region"], e["code"]) for e in scans[0]["errors"]] == [("us-west-2", "RequestExpired")]


def _other_account(moto_url: str) -> Aws:
    account = str(random.randint(2 * 10**11, 9 * 10**11))
    sts = boto3.client("sts", endpoint_url=moto_url, region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/dd0c-cost-reader",
                            RoleSessionName="dd0c-zombie-test-2")["Credentials"]
    return Aws(account, {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                         "aws_session_token": creds["SessionToken"]}, moto_url)


async def test_expired_credentials_fail_one_account_and_spare_the_other(
    aws: Aws, proxy: FaultProxy, database_url: str
) -> None:
    """Account A's nine zombies ($85.757) are open. Next day A's credentials are already expired (ExpiredToken on
    its first call, DescribeRegions): its run is `failed` after 1 call, nothing resolved, the nine stay open. Account
    B, scanned through the same proxy right after, is `ok` and adds its 50 GiB gp2 volume ($5.00)."""
    seeded = seed(aws)
    now = seeded.hunt_now
    other = _other_account(aws.moto_url)
    b_vol = other.client("ec2").create_volume(Size=50, VolumeType="gp2", AvailabilityZone="us-east-1a")["VolumeId"]
    async with pool_for(database_url) as pool:
        await hunt(pool, aws, now, endpoint=proxy.url)
        await drain(database_url)

        rule = proxy.expire(aws.credentials["aws_access_key_id"], code="ExpiredToken")
        a = await hunt(pool, aws, now + DAY, endpoint=proxy.url)
        b = await hunt(pool, other, now + DAY, endpoint=proxy.url)
        await drain(database_url)

        assert (a.result.status, a.result.calls_made, a.resolved, a.result.found, rule.hits) == ("failed", 1, 0, [], 1)
        assert [(e.region, e.code, e.operation) for e in a.result.region_errors] == [
            ("us-east-1", "ExpiredToken", "DescribeRegions")]
        assert a.result.reason == (f"the credentials of account {aws.account_id} expired (ExpiredToken from "
                                   "DescribeRegions in us-east-1); nothing scanned")
        assert (b.result.status, [(z.check, z.resource_id, z.monthly_waste_usd) for z in b.result.found]) == (
            "ok", [("unattached_ebs_volume", b_vol, pytest.approx(5.00))])

        rows = await queries.list_zombies(pool, TENANT, status="all", now=now + DAY, limit=100)
        assert {r["resource_id"]: r["status"] for r in rows} == {
            **{rid: "open" for rid in seeded.zombies.values()}, b_vol: "open"}
        totals = await queries.zombie_totals(pool, TENANT, now=now + DAY)
        assert (totals["count"], totals["monthly_waste_usd"]) == (10, pytest.approx(TOTAL_WASTE + 5.00))
        assert sorted((x["account_id"], x["count"]) for x in totals["by_account"]) == sorted(
            [(aws.account_id, 9), (other.account_id, 1)])

        failed = await queries.list_scans(pool, TENANT, account=aws.account_id)
        assert [(s["status"], s["calls_made"], s["resolved"]) for s in failed] == [("failed", 1, 0), ("ok", 19, 0)]
        assert aws.account_id in failed[0]["reason"] and "expired" in failed[0]["reason"]
