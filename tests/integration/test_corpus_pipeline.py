"""Every public source in ops/corpus/cloudtrail through the whole pipeline: ingest -> log -> worker -> projections.

For each source: what was read, logged, counted as read-only, deduplicated, skipped and rejected, and what the
folds made of it - cost events, how many priced, their $/hour, anomalies. Dollar figures come from the shipped
price snapshot; the ones worth checking by hand are spelled out below.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ops.ingest import ingest
from streams.prices.table import load_default_prices
from streams.runner.postgres import PostgresRunner
from tests.conftest import CORPUS
from tests.integration.test_api_rows import db


@dataclass(frozen=True)
class Expect:
    read: int
    logged: int
    read_only: int = 0
    duplicate: int = 0
    rejected: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    cost_events: int = 0
    priced: int = 0
    hourly: float = 0.0  # sum of priced (and estimated) $/h over all cost events
    by_type: dict[str, int] = field(default_factory=dict)


EXPECTED: dict[str, Expect] = {
    # Real delivery files of an attack simulation, all us-east-1. Priced, by hand: 2 x t3.micro (2 x 0.0104),
    # 3 Elastic IPs (3 x 0.005), 2 NAT gateways (2 x 0.045), 2 gp2 8 GiB volumes, 2 snapshots, 1 db.t3.micro.
    "invictus-ir_aws_dataset": Expect(
        read=2900, logged=574, read_only=2326, cost_events=12, priced=12, hourly=0.144786,
        by_type={"ec2_instance": 2, "elastic_ip": 3, "nat_gateway": 2, "ebs_volume": 2, "ebs_snapshot": 2,
                 "rds_instance": 1},
    ),
    "stratus-red-team_detonation-logs": Expect(
        read=310, logged=49, read_only=261, cost_events=1, priced=0, by_type={"ec2_instance": 1}
    ),
    "panther-analysis_rule-tests": Expect(
        # + regional estimates (factors us-west-2 1.0, us-west-1 1.1667): gp3 10 + 12 GiB x 0.08 / 730 and the
        # us-west-1 db.t3.micro's 22 GiB gp2 storage x 0.115 x 1.1667 / 730
        read=464, logged=104, read_only=90, duplicate=239, rejected=31, cost_events=11, priced=9, hourly=1.036594,
        by_type={"ec2_instance": 6, "ebs_volume": 2, "rds_instance": 3},
    ),
    "stackstate_aws-topology": Expect(
        # + eu-west-1 estimates (factor 1.115): 8 GiB gp2 x 0.10 / 730, CLB 0.025 and ALB 0.0225 per hour
        read=90, logged=89, duplicate=1, skipped={"non_cloudtrail": 5}, cost_events=8, priced=7, hourly=0.429184,
        by_type={"ec2_instance": 2, "ebs_volume": 1, "load_balancer": 2, "rds_cluster": 1, "rds_instance": 1,
                 "redshift_cluster": 1},
    ),
    "cloud-custodian_cwe": Expect(
        # + us-west-1 estimates (factor 1.1667): 2 x (2 instances x 8 GiB gp2) x 0.10 / 730
        read=24, logged=21, duplicate=2, rejected=1, cost_events=7, priced=7, hourly=0.125344,
        by_type={"ec2_instance": 2, "ebs_volume": 4, "rds_instance": 1},
    ),
    "criblpacks_aws-cloudtrail-logs": Expect(
        read=44, logged=38, read_only=6, cost_events=5, priced=4, hourly=0.057377,
        by_type={"ec2_instance": 2, "rds_instance": 2, "dynamodb_table": 1},
    ),
    "awsdocs_cloudtrail-user-guide": Expect(
        read=25, logged=22, duplicate=2, rejected=1, skipped={"digest": 2}, cost_events=1, priced=0,
        by_type={"ec2_instance": 1},
    ),
    "aws_cloudtrail-processing-library": Expect(read=40, logged=17, duplicate=21, rejected=5),
    "plaso": Expect(
        # + ap-southeast-2 estimate (factor 1.2534): 8 GiB gp2 x 0.10 / 730
        read=6, logged=5, read_only=1, cost_events=2, priced=2, hourly=0.015974,
        by_type={"ec2_instance": 1, "ebs_volume": 1},
    ),
    "trailscraper": Expect(read=5, logged=1, read_only=3, duplicate=1),
    "coreos_grafiti": Expect(
        # + us-west-2 estimates (factor 1.0): 2 x 30 GiB gp2 x 0.10 / 730 and a CLB at 0.025 per hour
        read=11, logged=11, cost_events=5, priced=5, hourly=0.233219,
        by_type={"ec2_instance": 2, "ebs_volume": 2, "load_balancer": 1},
    ),
    "cado-security_cloudgrep": Expect(read=2, logged=2, rejected=1),
}


def test_every_corpus_source_is_covered() -> None:
    assert sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("source", sorted(EXPECTED))
async def test_corpus_source_through_the_pipeline(source: str, database_url: str) -> None:
    want = EXPECTED[source]
    async with db(database_url) as conn:
        report = await ingest(conn, [Path(CORPUS / source)], tenant="default", err=io.StringIO())
        await PostgresRunner(database_url, load_default_prices()).run(drain=True)
        events = await conn.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE hourly_cost IS NOT NULL) AS priced,"
            " coalesce(sum(hourly_cost), 0) AS hourly FROM cost_events"
        )
        types = {r["resource_type"]: r["n"] for r in await conn.fetch(
            "SELECT resource_type, count(*) AS n FROM cost_events GROUP BY 1"
        )}
        dead = await conn.fetchval("SELECT count(*) FROM dead_letters")
        anomalies = await conn.fetchval("SELECT count(*) FROM anomalies")
        zero = await conn.fetchval("SELECT count(*) FROM cost_events WHERE hourly_cost = 0")

    total = report.total()
    got = (total.read, total.logged, total.read_only_counted, total.duplicate, total.rejected, dict(total.skipped))
    assert got == (want.read, want.logged, want.read_only, want.duplicate, want.rejected, want.skipped)
    assert dead == want.rejected  # every rejected record is in the dead-letter table with its reason
    assert (events["n"], events["priced"]) == (want.cost_events, want.priced)
    assert round(events["hourly"], 6) == pytest.approx(want.hourly, abs=1e-6)
    assert types == want.by_type
    assert zero == 0  # an unknown price is null, never $0
    # Every account's first cost event of a type is at least an info anomaly ("first resource type").
    assert (anomalies > 0) == (want.cost_events > 0)
