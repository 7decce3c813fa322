"""Zombie scan benchmark: one account with ~10,000 resources across 4 regions in moto (server mode, in-process).

`python -m ops.bench.zombies [--resources 10000]` or `python -m ops.bench --only zombies`. Seeds every region with
the same mix (instances - half of them stopped - with their root volumes, unattached volumes, snapshots of deleted
volumes, Elastic IPs, NAT gateways with theirs, ALBs, RDS instances), then times one full hunt (all checks) and
counts the AWS calls it sent with a botocore `before-send` hook on the session (retries would count too).

The target is one call per resource type and page: `expected_calls` is that bound worked out from the mix (moto
answers a listing in one page; EC2 filters take 200 values; GetMetricData 500 series). Wall time includes moto,
which runs in this process and is much slower than AWS per call - the call count is the portable figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
# Per region, for 10,080 resources over 4 regions (an instance counts twice: itself and its root volume).
MIX = {"instances": 970, "volumes": 400, "snapshots": 50, "eips": 50, "nats": 30, "albs": 10, "databases": 10}
PER_REGION = 2 * MIX["instances"] + MIX["volumes"] + MIX["snapshots"] + MIX["eips"] + 2 * MIX["nats"] + MIX[
    "albs"] + MIX["databases"]


def _mix(resources: int, regions: int) -> dict[str, int]:
    scale = resources / (PER_REGION * regions)
    return {k: max(1, round(v * scale)) for k, v in MIX.items()}


def expected_calls(mix: dict[str, int], regions: int) -> int:
    """One call per resource type and page (moto: one page per listing)."""
    running = mix["instances"] - mix["instances"] // 2
    stopped = mix["instances"] // 2
    per_region = (
        1  # DescribeVolumes (available)
        + 1 + 1 + 1 + math.ceil(mix["snapshots"] / 200)  # snapshots, AMIs, launch templates, their source volumes
        + 1 + 1 + math.ceil(mix["nats"] / 500)  # addresses, NAT gateways, their traffic
        + 1 + 1 + math.ceil(mix["albs"] / 500)  # classic + v2 load balancers, their requests (idle: no targets)
        + 1 + math.ceil(stopped / 200) + math.ceil(3 * running / 500)  # instances, stopped ones' volumes, metrics
        + 1 + math.ceil(mix["databases"] / 500)  # RDS and connections
    )
    return 1 + regions * per_region  # + DescribeRegions


def _seed(session: Any, region: str, mix: dict[str, int]) -> int:
    ec2 = session.client("ec2", region_name=region)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    az = ec2.describe_subnets(SubnetIds=[subnets[0]])["Subnets"][0]["AvailabilityZone"]
    made = ec2.run_instances(ImageId="ami-0dd0c0000000000aa", MinCount=mix["instances"],
                             MaxCount=mix["instances"], InstanceType="t3.micro", SubnetId=subnets[0])
    ids = [i["InstanceId"] for i in made["Instances"]]
    ec2.stop_instances(InstanceIds=ids[: mix["instances"] // 2])
    for _ in range(mix["volumes"]):
        ec2.create_volume(Size=100, VolumeType="gp3", AvailabilityZone=az)
    for _ in range(mix["snapshots"]):
        vid = ec2.create_volume(Size=20, VolumeType="gp2", AvailabilityZone=az)["VolumeId"]
        ec2.create_snapshot(VolumeId=vid)
        ec2.delete_volume(VolumeId=vid)
    for _ in range(mix["eips"]):
        ec2.allocate_address(Domain="vpc")
    for _ in range(mix["nats"]):
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=alloc)
    elbv2 = session.client("elbv2", region_name=region)
    for i in range(mix["albs"]):
        elbv2.create_load_balancer(Name=f"bench-{i}", Subnets=subnets)
    rds = session.client("rds", region_name=region)
    for i in range(mix["databases"]):
        rds.create_db_instance(DBInstanceIdentifier=f"bench-{i}", DBInstanceClass="db.t3.micro", Engine="postgres",
                               AllocatedStorage=20, MasterUsername="bench", MasterUserPassword="bench-password-0")
    return 2 * mix["instances"] + mix["volumes"] + mix["snapshots"] + mix["eips"] + 2 * mix["nats"] + mix[
        "albs"] + mix["databases"]


def zombies(resources: int = 10_000, regions: int = 4) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    from ops.bench.common import log
    from streams.accounts.session import EndpointSession
    from streams.prices.table import load_default_prices
    from streams.zombies.pure import CheckThresholds
    from streams.zombies.scan import scan_account, session_client_factory

    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"  # moto's own AMIs bring ~1,300 snapshots per region
    for key, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(key, value)
    # moto's HTTP server logs every request through werkzeug's logger, whatever `verbose` says: 2,800 lines
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        account = str(random.randint(2 * 10**11, 9 * 10**11))
        creds = boto3.client("sts", endpoint_url=url, region_name="us-east-1").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/dd0c-cost-reader", RoleSessionName="dd0c-bench")["Credentials"]
        session = EndpointSession(region_name="us-east-1", endpoint_url=url, aws_access_key_id=creds["AccessKeyId"],
                                  aws_secret_access_key=creds["SecretAccessKey"],
                                  aws_session_token=creds["SessionToken"])
        names = list(REGIONS[:regions])
        mix = _mix(resources, len(names))
        began = time.perf_counter()
        seeded = sum(_seed(session, r, mix) for r in names)
        log(f"zombies: seeded {seeded:,} resources in {len(names)} regions ({time.perf_counter() - began:.0f}s)")

        sent: Counter[str] = Counter()

        def count(event_name: str = "", **_: Any) -> None:  # "before-send.<service>.<Operation>": one per request
            sent[event_name.rsplit(".", 1)[-1]] += 1

        session.events.register("before-send", count)
        waited: Counter[str] = Counter()  # seconds per operation from request to parsed answer (moto's time + ours)
        began_call: dict[int, float] = {}

        def call_started(context: Any = None, **_: Any) -> None:
            if context is not None:
                began_call[id(context)] = time.perf_counter()

        def call_ended(event_name: str = "", context: Any = None, **_: Any) -> None:
            if context is not None and id(context) in began_call:
                waited[event_name.rsplit(".", 1)[-1]] += time.perf_counter() - began_call.pop(id(context))

        session.events.register("before-call", call_started)
        session.events.register("after-call", call_ended)
        now = datetime.now(UTC) + timedelta(days=40)
        started = time.perf_counter()
        result = scan_account(
            session_client_factory(session), tenant="bench", account_id=account, now=now,
            thresholds=CheckThresholds.from_mapping({"snapshot_age_days": 30}), prices=load_default_prices(),
            regions=names,
        )
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    bound = expected_calls(mix, len(names))
    out = {
        "resources": seeded,
        "regions": len(names),
        "mix_per_region": mix,
        "seconds": round(seconds, 2),
        "aws_calls": result.calls_made,
        "aws_calls_hooked": sum(sent.values()),
        "expected_calls": bound,
        "calls_by_operation": dict(sorted(sent.items())),
        "seconds_by_operation": {k: round(v, 2) for k, v in sorted(waited.items())},
        "zombies": len(result.found),
        "status": result.status,
        "resources_per_call": round(seeded / max(1, result.calls_made), 1),
    }
    log(f"zombies: scan {seconds:.1f}s, {result.calls_made} AWS calls (bound {bound}), {len(result.found):,} zombies")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ops.bench.zombies", description=__doc__.split("\n\n")[0])
    ap.add_argument("--resources", type=int, default=10_000)
    ap.add_argument("--regions", type=int, default=4, choices=range(1, len(REGIONS) + 1))
    args = ap.parse_args(argv)
    print(json.dumps(zombies(args.resources, args.regions), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
