"""The plan of a generated history: every call that is not background traffic, decided before anything is written.

The normal pattern (launches, terminations, volumes, databases, refused calls) and the injected incidents are
described in ops/demo/generate.py. Instance, volume and gateway ids are drawn here, so that a termination names
the instances its launch started; the records themselves are built when their hour is written (`build`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ops.demo import records as R
from ops.demo.accounts import HOME_REGIONS, REGION_WEIGHTS, UNUSED_REGION, Actor, Actors, Profile


class PlanError(ValueError):
    """A planned call of a kind the builder does not know: a bug in this module."""


@dataclass
class Incident:
    """One injected incident as the manifest lists it; `event_ids` are filled in while its records are written."""

    name: str
    account_id: str
    account_name: str
    region: str
    actor: str
    at: str
    run_instances: int
    instances: int
    instance_type: str | None
    what: str
    event_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Planned:
    at: int  # seconds since the start of the history
    account: int
    region: str
    kind: str  # run | run_failed | terminate | create_volume | delete_volume | create_db | delete_db | ...
    actor: Actor
    args: dict[str, Any]
    incident: str | None = None
    read_only: bool = False


def _az(region: str, n: int) -> str:
    return region + "abc"[n % 3]


class Planner:
    """Draws the plan: `normal()`, then `incidents_plan()`. Items outside the history's span are dropped."""

    def __init__(self, days: int, seed: int, accounts: tuple[Profile, ...], actors: list[Actors],
                 start: datetime) -> None:
        self.days = days
        self.accounts = accounts
        self.actors = actors
        self.start = start
        self.total = days * 86400
        self.rng = random.Random(f"schedule-{seed}")
        self.ids = R.Ids(self.rng)
        self.items: list[Planned] = []
        self.incidents: list[Incident] = []

    def add(self, item: Planned) -> None:
        if 0 <= item.at < self.total:
            self.items.append(item)

    def launch(self, at: int, a: int, region: str, actor: Actor, itype: str, count: int, *, lt: bool = False,
               name: str, life: int | None = None, incident: str | None = None) -> list[str]:
        iids = [self.ids.aws("i") for _ in range(count)]
        self.add(Planned(at, a, region, "run", actor,
                         {"ids": iids, "type": itype, "az": _az(region, at), "lt": lt, "name": name}, incident))
        if life is not None:
            self.add(Planned(at + life, a, region, "terminate", actor, {"ids": iids}))
        return iids

    def normal(self) -> None:
        rng = self.rng
        for a, prof in enumerate(self.accounts):
            act = self.actors[a]
            for d in range(self.days):
                day = d * 86400
                weekend = (self.start + timedelta(days=d)).weekday() >= 5
                for _ in range(max(1, prof.asg_size // 2) if weekend else prof.asg_size):
                    up = day + 7 * 3600 + rng.randrange(2 * 3600)
                    down = day + 19 * 3600 + rng.randrange(2 * 3600)
                    self.launch(up, a, "us-east-1", act.autoscaling, prof.asg_type, 1, lt=True, name="web-asg",
                                life=down - up)
                for _ in range(rng.randint(0, 1) if weekend else rng.randint(1, 3)):
                    t = day + rng.randrange(9 * 3600, 18 * 3600)
                    region = _weighted(rng, HOME_REGIONS, REGION_WEIGHTS)
                    self.launch(t, a, region, act.deploy, rng.choice(("t3.medium", "t3.large")), 1,
                                name="ci-runner", life=rng.randrange(1800, 4 * 3600))
                for _ in range(rng.randint(1, 2)):
                    t = day + rng.randrange(8 * 3600, 20 * 3600)
                    region = _weighted(rng, HOME_REGIONS, REGION_WEIGHTS)
                    vol = self.ids.aws("vol")
                    self.add(Planned(t, a, region, "create_volume", act.deploy,
                                     {"id": vol, "size": rng.choice((50, 100, 200)), "az": _az(region, t)}))
                    self.add(Planned(t + rng.randrange(3600, 6 * 3600), a, region, "delete_volume", act.deploy,
                                     {"id": vol}))
                user = act.users[d % len(act.users)]
                t = day + rng.randrange(int(9.5 * 3600), 17 * 3600)
                self.launch(t, a, _weighted(rng, HOME_REGIONS, REGION_WEIGHTS), user,
                            rng.choice(("m5.large", "m5.xlarge", "t3.large")), 1, name=f"{user.name}-scratch",
                            life=rng.randrange(3 * 3600, 20 * 3600))
                if d % 3 == 1:
                    other = act.users[(d + 1) % len(act.users)]
                    self.add(Planned(day + rng.randrange(10 * 3600, 16 * 3600), a, "us-east-1", "run_failed",
                                     other, {"type": "c5.2xlarge", "count": 1}))
                if prof.databases and d % 5 == 2:
                    t = day + rng.randrange(9 * 3600, 12 * 3600)
                    db = R.Database(f"staging-pg-{d:02d}", "db.t3.medium", "postgres", "16.3", False, 20, "gp3")
                    self.add(Planned(t, a, "us-east-1", "create_db", act.deploy, {"db": db}))
                    self.add(Planned(t + 20 * 3600, a, "us-east-1", "delete_db", act.deploy, {"id": db.identifier}))

    # --- the incidents (see the module docstring) -------------------------------------------------------------

    def _incident(self, name: str, preferred: int, region: str, actor: str, at: int, what: str,
                  itype: str | None = None) -> tuple[int, Incident]:
        a = preferred % len(self.accounts)
        inc = Incident(name, self.accounts[a].account_id, self.accounts[a].name, region, actor,
                       iso(self.start + timedelta(seconds=at)), 0, 0, itype, what)
        self.incidents.append(inc)
        return a, inc

    def _incident_launch(self, inc: Incident, at: int, a: int, actor: Actor, itype: str, count: int,
                         name: str) -> None:
        self.launch(at, a, inc.region, actor, itype, count, name=name, incident=inc.name)
        inc.run_instances += 1
        inc.instances += count

    def incidents_plan(self) -> None:
        days, end = self.days, self.total
        # leak: 5 days of loadtest instances nobody terminates
        a, inc = self._incident("leak", 1, "us-east-1", "gha-deploy", (days - 5) * 86400 + 15 * 3600 + 1200,
                                "CI starts 4 m5.2xlarge 'loadtest' instances every day and never terminates them",
                                "m5.2xlarge")
        for k in range(5, 0, -1):
            self._incident_launch(inc, (days - k) * 86400 + 15 * 3600 + 1200, a, self.actors[a].deploy,
                                  "m5.2xlarge", 4, "loadtest")
        # rds_multi_az
        at = (days - 4) * 86400 + 10 * 3600 + 300
        a, inc = self._incident("rds_multi_az", 0, "us-east-1", "gha-deploy", at,
                                "CI creates a db.r5.8xlarge Postgres, multi-AZ, 2000 GiB io1 / 20000 IOPS",
                                "db.r5.8xlarge")
        db = R.Database("analytics-prod", "db.r5.8xlarge", "postgres", "16.3", True, 2000, "io1", 20000)
        self.add(Planned(at, a, inc.region, "create_db", self.actors[a].deploy, {"db": db}, inc.name))
        # root_nat_gateway
        at = (days - 3) * 86400 + 2 * 3600 + 47 * 60
        a, inc = self._incident("root_nat_gateway", 1, "us-east-1", "root", at,
                                "the root user allocates an Elastic IP and creates a NAT gateway at night")
        root, alloc = self.actors[a].root, self.ids.aws("eipalloc")
        self.add(Planned(at, a, inc.region, "allocate_address", root, {"id": alloc, "ip": "3.228.17.41"}, inc.name))
        self.add(Planned(at + 40, a, inc.region, "create_nat", root, {"id": self.ids.aws("nat"), "alloc": alloc},
                         inc.name))
        # new_region: a leaked key used where nobody works
        at = (days - 2) * 86400 + 3 * 3600 + 12 * 60
        pref = 3
        user = self.actors[pref % len(self.accounts)].users[0]
        a, inc = self._incident("new_region", pref, UNUSED_REGION, user.name, at,
                                f"{user.name}'s access key, from an unknown address, starts 2 x 8 c5.4xlarge in "
                                f"{UNUSED_REGION}, a region nobody uses", "c5.4xlarge")
        thief = Actor(user.name, user.identity, "185.220.101.34", "Boto3/1.26.0 Python/3.8.10 Linux/5.4.0")
        self.add(Planned(at, a, "us-east-1", "read", thief, {"prefix": "sts", "name": "GetCallerIdentity"},
                         inc.name, read_only=True))
        self.add(Planned(at + 20, a, UNUSED_REGION, "read", thief, {"prefix": "ec2", "name": "DescribeRegions"},
                         inc.name, read_only=True))
        for k in range(2):
            self._incident_launch(inc, at + 60 + 90 * k, a, thief, "c5.4xlarge", 8, "worker")
        # gpu_burst: the newest incident, 40 minutes before the end
        at = end - 40 * 60
        pref = 2
        user = self.actors[pref % len(self.accounts)].users[0]
        a, inc = self._incident("gpu_burst", pref, "us-east-1", user.name, at,
                                f"{user.name}, who usually starts one m5, starts 3 x 2 p4d.24xlarge and a p5.48xlarge",
                                "p4d.24xlarge")
        for k, (itype, count) in enumerate((("p4d.24xlarge", 2), ("p4d.24xlarge", 2), ("p4d.24xlarge", 2),
                                             ("p5.48xlarge", 1))):
            self._incident_launch(inc, at + 100 * k, a, user, itype, count, f"{user.name}-training")


def _weighted(rng: random.Random, keys: tuple[str, ...], weights: dict[str, float]) -> str:
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(ids: R.Ids, item: Planned, event_time: str, epoch_ms: int, acc: str) -> dict[str, Any]:
    k, g, region = item.kind, item.args, item.region
    if k == "run":
        req, resp = R.run_instances(ids, g["ids"], g["type"], g["az"], epoch_ms, launch_template=g["lt"],
                                    owner=acc, name_tag=g["name"])
        return R.record(ids, item.actor, event_time, "ec2", "RunInstances", region, acc, req, resp, False)
    if k == "terminate":
        req, resp = R.terminate_instances(ids, g["ids"])
        return R.record(ids, item.actor, event_time, "ec2", "TerminateInstances", region, acc, req, resp, False)
    if k == "run_failed":
        req = R.run_instances_failed(ids, g["type"], g["count"])
        return R.record(ids, item.actor, event_time, "ec2", "RunInstances", region, acc, req, None, False,
                        error=("Client.UnauthorizedOperation", "You are not authorized to perform this operation. "
                               "User is not authorized to perform: ec2:RunInstances"))
    if k == "create_volume":
        req, resp = R.create_volume(ids, g["id"], g["size"], "gp3", g["az"], epoch_ms)
        return R.record(ids, item.actor, event_time, "ec2", "CreateVolume", region, acc, req, resp, False)
    if k == "delete_volume":
        req, resp = R.delete_volume(ids, g["id"])
        return R.record(ids, item.actor, event_time, "ec2", "DeleteVolume", region, acc, req, resp, False)
    if k == "create_db":
        req, resp = R.create_db_instance(ids, g["db"], region, acc)
        return R.record(ids, item.actor, event_time, "rds", "CreateDBInstance", region, acc, req, resp, False)
    if k == "delete_db":
        return R.record(ids, item.actor, event_time, "rds", "DeleteDBInstance", region, acc,
                        R.delete_db_instance(g["id"]), None, False)
    if k == "allocate_address":
        req, resp = R.allocate_address(ids, g["id"], region, g["ip"])
        return R.record(ids, item.actor, event_time, "ec2", "AllocateAddress", region, acc, req, resp, False)
    if k == "create_nat":
        req, resp = R.create_nat_gateway(ids, g["id"], g["alloc"], event_time.replace("Z", ".000Z"))
        return R.record(ids, item.actor, event_time, "ec2", "CreateNatGateway", region, acc, req, resp, False)
    if k == "read":
        req = {"regionSet": {}} if g["name"] == "DescribeRegions" else None
        return R.record(ids, item.actor, event_time, g["prefix"], g["name"], region, acc, req, None, True)
    raise PlanError(f"unknown planned kind {k!r}")
