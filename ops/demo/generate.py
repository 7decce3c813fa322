"""A realistic multi-account CloudTrail history, written as real delivery files in the S3 layout.

    python -m ops.demo.generate OUT_DIR --days 21 --accounts 4 --records 200000 --seed 7

Files land at `OUT_DIR/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random16>.json.gz`, each a gzipped `{"Records":[...]}`, plus
`OUT_DIR/manifest.json` (parameters, counts, accounts and the injected incidents with their eventIDs).
The same parameters and seed give the same bytes; nothing reads the clock (the demo passes `end`).

The normal pattern, per account and day (times UTC):
* the web Auto Scaling group adds `asg_size` instances between 07:00 and 09:00 (RunInstances by the Auto Scaling
  service-linked role, instance type hidden in a launch template) and removes them between 19:00 and 21:00;
* the CI role (`gha-deploy`, Terraform) starts 1-3 t3.medium / t3.large runners and terminates them 0.5-4 h
  later, and creates 1-2 gp3 volumes it deletes 1-6 h later;
* one IAM user, in turn, starts an m5.large / m5.xlarge / t3.large for a few hours;
* accounts with databases create a small staging Postgres every five days and delete it the next day;
* every third day a user's RunInstances is refused (errorCode Client.UnauthorizedOperation: creates nothing);
* around all this, ~90 % of the calls are read-only (Describe*/Get*/List*, AssumeRole, Decrypt) and the rest
  writes that bill nothing (CreateTags, PutParameter, CreateLogStream, ConsoleLogin, ...), busier in office
  hours and on weekdays, spread over us-east-1, us-west-2 and eu-west-1.

The incidents (account = preferred index modulo the number of accounts; times relative to the end):
* `gpu_burst` — 40 min before the end, `carol` (data), an IAM user who otherwise starts an m5 every third
  day, starts 3 x 2 p4d.24xlarge and 1 p5.48xlarge in us-east-1 within six minutes: 4 RunInstances,
  7 instances, ~$187/h. A new instance family at two hundred times the account's usual $/h.
* `new_region` — day -2 03:12, the access key of `frank` (dev) is used from an unfamiliar address: a
  GetCallerIdentity and a DescribeRegions, then 2 RunInstances of 8 c5.4xlarge each in ap-southeast-2, a
  region nobody in the organisation has ever used.
* `root_nat_gateway` — day -3 02:47, the root user of staging allocates an Elastic IP and creates a NAT gateway
  in us-east-1 at night: a root identity and a resource type the account never had. No RunInstances.
* `rds_multi_az` — day -4 10:05, the CI role in prod creates a db.r5.8xlarge Postgres, multi-AZ, 2000 GiB
  io1 at 20000 IOPS, where its databases are otherwise a single-AZ db.t3.medium for a day. No RunInstances.
* `leak` — on each of the last 5 days at 15:20, the CI role in staging starts 4 m5.2xlarge "loadtest"
  instances and never terminates them (every normal launch is terminated): 5 RunInstances, 20 instances
  still running at the end (~$7.7/h and counting).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import shutil
import sys
import time
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson

from ops.demo import records as R
from ops.demo.accounts import HOME_REGIONS, REGION_WEIGHTS, actors_for, profiles
from ops.demo.plan import Incident, Planned, Planner, build, iso
from schemas.events import Dd0cError

GENERATOR_VERSION = 2  # bump when the bytes change: reused histories are regenerated
DEFAULT_END = datetime(2024, 5, 22, tzinfo=UTC)
MIN_DAYS = 7  # the incidents use the last five days; the first days are the accounts' learning window
MANIFEST = "manifest.json"
DELIVERY_DELAY_MIN = 5  # CloudTrail delivers a file about five minutes after its window closes


@dataclass(frozen=True)
class Params:
    days: int = 21
    accounts: int = 4
    records: int = 200_000
    seed: int = 7
    end: datetime = DEFAULT_END  # exclusive; must be whole minutes, UTC
    read_only_share: float = 0.90
    file_minutes: int | None = None  # delivery window; None picks 5..60 so files hold ~100+ records
    compresslevel: int = 6

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["end"] = self.end.isoformat().replace("+00:00", "Z")
        return out


@dataclass
class Report:
    out_dir: Path
    params: Params
    files: int
    records: int
    read_only: int
    file_minutes: int
    seconds: float
    event_names: dict[str, int]
    accounts: list[dict[str, Any]]
    incidents: list[Incident]

    def manifest(self) -> dict[str, Any]:
        return {
            "generator_version": GENERATOR_VERSION,
            "complete": True,
            "params": self.params.to_json(),
            "files": self.files,
            "records": self.records,
            "read_only": self.read_only,
            "file_minutes": self.file_minutes,
            "seconds": round(self.seconds, 2),
            "event_names": self.event_names,
            "accounts": self.accounts,
            "incidents": [asdict(i) for i in self.incidents],
        }


class GenerateError(Dd0cError, ValueError):
    """Parameters that cannot produce a sensible history (a Dd0cError: `dd0c-cost demo --days 3` gets one line)."""


# --- background traffic: how many read-only calls and plain writes go in each (account, region, hour) ----------


def _hour_weight(t: datetime) -> float:
    busy = 1.0 if 8 <= t.hour < 19 else 0.35
    return busy * (0.5 if t.weekday() >= 5 else 1.0)


def _allocate(total: int, weights: list[float]) -> list[int]:
    """Split `total` over cells in proportion to weights, exactly (largest remainder, ties by index)."""
    wsum = sum(weights)
    exact = [total * w / wsum for w in weights]
    counts = [int(x) for x in exact]
    short = total - sum(counts)
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[:short]:
        counts[i] += 1
    return counts


def _pick_file_minutes(records: int, cells: int) -> int:
    per_hour = records / max(cells, 1)
    for minutes in (5, 10, 15, 20, 30):
        if per_hour * minutes / 60 >= 100:
            return minutes
    return 60


# --- writing --------------------------------------------------------------------------------------------------

_MMSS = [f"{s // 60:02d}:{s % 60:02d}Z" for s in range(3600)]


class _Writer:
    def __init__(self, root: Path, p: Params, rng: random.Random) -> None:
        self.root = root
        self.p = p
        self.rng = rng
        self.files = 0
        self.made_dirs: set[Path] = set()

    def write(self, account: str, region: str, delivered: datetime, recs: list[dict[str, Any]]) -> None:
        d = self.root / "AWSLogs" / account / "CloudTrail" / region / delivered.strftime("%Y/%m/%d")
        if d not in self.made_dirs:
            d.mkdir(parents=True, exist_ok=True)
            self.made_dirs.add(d)
        suffix = "".join(self.rng.choices(R._ALNUM, k=16))
        name = f"{account}_CloudTrail_{region}_{delivered.strftime('%Y%m%dT%H%MZ')}_{suffix}.json.gz"
        data = gzip.compress(orjson.dumps({"Records": recs}), compresslevel=self.p.compresslevel, mtime=0)
        (d / name).write_bytes(data)
        self.files += 1


def _pickers(templates: tuple[R.Template, ...]) -> tuple[Callable[[float], R.Template], Callable[[float], R.Template]]:
    """(any region, not us-east-1): map a uniform draw to a template by weight."""

    def table(ts: list[R.Template]) -> Callable[[float], R.Template]:
        cum = list(accumulate(t.weight for t in ts))
        top = cum[-1]
        return lambda u: ts[bisect(cum, u * top)]

    return table(list(templates)), table([t for t in templates if not t.global_only])


def require_days(days: int) -> None:
    """The history must be long enough for the incidents (the CLI asks before any server starts)."""
    if days < MIN_DAYS:
        raise GenerateError(f"--days must be at least {MIN_DAYS} (the incidents use the last five days)")


def generate(out_dir: Path, params: Params, *, progress: Callable[[str], None] | None = None) -> Report:
    """Write the history under out_dir (replacing a previous generated one). Deterministic for params."""
    p = params
    require_days(p.days)
    if p.end.tzinfo is None or p.end.second or p.end.microsecond:
        raise GenerateError("end must be a UTC datetime in whole minutes")
    began = time.perf_counter()
    end = p.end.astimezone(UTC)
    start = end - timedelta(days=p.days)
    accounts = profiles(p.accounts, p.seed)
    actors = [actors_for(prof, p.seed, iso(start)) for prof in accounts]

    planner = Planner(p.days, p.seed, accounts, actors, start)
    planner.normal()
    planner.incidents_plan()
    planned = planner.items
    planned_read_only = sum(1 for i in planned if i.read_only)
    writes_target = round(p.records * (1 - p.read_only_share))
    background_writes = writes_target - (len(planned) - planned_read_only)
    if background_writes < 0:
        need = math.ceil((len(planned) - planned_read_only) / (1 - p.read_only_share))
        raise GenerateError(
            f"--records {p.records} is too few for {p.days} days x {p.accounts} accounts: the cost-relevant "
            f"schedule alone has {len(planned) - planned_read_only} writes; use --records {need} or more"
        )
    read_only_total = p.records - len(planned) - background_writes

    hours = p.days * 24
    cells = [(h, a, r) for h in range(hours) for a in range(len(accounts)) for r in HOME_REGIONS]
    weights = [
        accounts[a].traffic * REGION_WEIGHTS[r] * _hour_weight(start + timedelta(hours=h)) for h, a, r in cells
    ]
    ro_counts = dict(zip(cells, _allocate(read_only_total, weights), strict=True))
    w_counts = dict(zip(cells, _allocate(background_writes, weights), strict=True))
    file_minutes = p.file_minutes or _pick_file_minutes(p.records, len(cells))
    if 60 % file_minutes:
        raise GenerateError("--file-minutes must divide 60")

    by_cell: dict[tuple[int, int, str], list[Planned]] = {}
    for item in planned:
        by_cell.setdefault((item.at // 3600, item.account, item.region), []).append(item)
    extra_regions = {(a, r) for (_, a, r) in by_cell if r not in HOME_REGIONS}

    root = Path(out_dir)
    _clear(root)
    root.mkdir(parents=True, exist_ok=True)
    _write_manifest(root, {"generator_version": GENERATOR_VERSION, "complete": False, "params": p.to_json()})

    rng = random.Random(f"traffic-{p.seed}")
    ids = R.Ids(rng)
    writer = _Writer(root, p, rng)
    pick_ro_any, pick_ro_regional = _pickers(R.READ_ONLY)
    pick_w_any, pick_w_regional = _pickers(R.WRITES)
    incident_by_name = {i.name: i for i in planner.incidents}
    names: Counter[str] = Counter()
    total = read_only = 0
    rand, randrange = rng.random, rng.randrange
    window = file_minutes * 60

    for h in range(hours):
        hour_start = start + timedelta(hours=h)
        prefix = hour_start.strftime("%Y-%m-%dT%H:")
        hour_ms = int(hour_start.timestamp()) * 1000
        for a, prof in enumerate(accounts):
            acc, act = prof.account_id, actors[a]
            pools = {"users": act.users, "deploy": (act.deploy,), "monitor": (act.monitor,),
                     "autoscaling": (act.autoscaling,), "service": (act.service,)}
            regions = HOME_REGIONS + tuple(sorted(r for (x, r) in extra_regions if x == a))
            for region in regions:
                cell = (h, a, region)
                n_ro, n_w = ro_counts.get(cell, 0), w_counts.get(cell, 0)
                items = by_cell.get(cell, ())
                if not (n_ro or n_w or items):
                    continue
                home = region == "us-east-1"
                rows: list[tuple[int, int, dict[str, Any]]] = []
                for n, pick, read in ((n_ro, pick_ro_any if home else pick_ro_regional, True),
                                      (n_w, pick_w_any if home else pick_w_regional, False)):
                    for _ in range(n):
                        tpl = pick(rand())
                        sec = randrange(3600)
                        pool = pools[tpl.actor]
                        actor = pool[0] if len(pool) == 1 else pool[randrange(len(pool))]
                        req, resp = tpl.make(ids, region, acc)
                        rec = R.record(ids, actor, prefix + _MMSS[sec], tpl.prefix, tpl.name, region, acc, req, resp,
                                       read, event_type=tpl.event_type, extra=tpl.extra)
                        rows.append((sec, len(rows), rec))
                for item in items:
                    sec = item.at - h * 3600
                    rec = build(ids, item, prefix + _MMSS[sec], hour_ms + sec * 1000, acc)
                    if item.incident:
                        incident_by_name[item.incident].event_ids.append(rec["eventID"])
                    rows.append((sec, len(rows), rec))
                rows.sort(key=lambda row: (row[0], row[1]))
                chunk: list[dict[str, Any]] = []
                current = rows[0][0] // window
                for sec, _, rec in rows:
                    if sec // window != current:
                        writer.write(acc, region, _delivered(hour_start, current, file_minutes), chunk)
                        chunk, current = [], sec // window
                    chunk.append(rec)
                    names[rec["eventName"]] += 1
                    read_only += rec["readOnly"]
                writer.write(acc, region, _delivered(hour_start, current, file_minutes), chunk)
                total += len(rows)
        if progress and h % 24 == 23:
            progress(f"day {h // 24 + 1}/{p.days}: {total:,} records, {writer.files:,} files")

    report = Report(
        out_dir=root,
        params=p,
        files=writer.files,
        records=total,
        read_only=read_only,
        file_minutes=file_minutes,
        seconds=time.perf_counter() - began,
        event_names=dict(sorted(names.items())),
        accounts=[{"account_id": pr.account_id, "name": pr.name, "users": list(pr.users)} for pr in accounts],
        incidents=planner.incidents,
    )
    if total != p.records:  # a bug in the allocation, not bad input
        raise AssertionError(f"generated {total} records, asked for {p.records}")
    _write_manifest(root, report.manifest())
    return report


def _delivered(hour_start: datetime, window_index: int, file_minutes: int) -> datetime:
    return hour_start + timedelta(minutes=(window_index + 1) * file_minutes + DELIVERY_DELAY_MIN)


def _write_manifest(root: Path, data: dict[str, Any]) -> None:
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, root / MANIFEST)


def _clear(root: Path) -> None:
    """Remove a previous generated history (only one we wrote: it has our manifest)."""
    logs = root / "AWSLogs"
    if not logs.exists():
        return
    if not (root / MANIFEST).exists():
        raise GenerateError(f"{logs} exists and is not a generated history (no {MANIFEST}); refusing to touch it")
    shutil.rmtree(logs)


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(out_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def ensure_history(out_dir: Path, params: Params, *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The manifest of the history at out_dir, generating it first unless one with these parameters exists."""
    found = read_manifest(out_dir)
    if (
        found
        and found.get("complete")
        and found.get("generator_version") == GENERATOR_VERSION
        and found.get("params") == params.to_json()
    ):
        return found
    return generate(out_dir, params, progress=progress).manifest()


def delivery_files(out_dir: Path) -> list[Path]:
    """Every delivery file of a generated history, in delivery order (time, then account, region, name).

    Ingest them in this order so that the log - and so every baseline - sees the history as it happened; the
    S3 key order (account, then region, then date) would replay one region's whole history before the next.
    """
    files = list((Path(out_dir) / "AWSLogs").glob("*/CloudTrail/*/*/*/*/*.json.gz"))
    return sorted(files, key=_delivery_key)


def _delivery_key(path: Path) -> tuple[str, str, str, str]:
    account, _, region, stamp, _suffix = path.name.split("_", 4)
    return stamp, account, region, path.name


def iter_records(out_dir: Path) -> Iterator[dict[str, Any]]:
    """Every record, file by file in delivery order (plain gzip + json: what any reader must manage)."""
    for path in delivery_files(out_dir):
        yield from json.loads(gzip.decompress(path.read_bytes()))["Records"]


def _parse_end(text: str) -> datetime:
    if text == "now":
        return datetime.now(UTC).replace(second=0, microsecond=0)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ops.demo.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--days", type=int, default=Params.days)
    ap.add_argument("--accounts", type=int, default=Params.accounts)
    ap.add_argument("--records", type=int, default=Params.records)
    ap.add_argument("--seed", type=int, default=Params.seed)
    ap.add_argument("--end", default=iso(DEFAULT_END), help="end of the history (UTC, whole minutes) or 'now'")
    ap.add_argument("--file-minutes", type=int, default=None, help="delivery window (default: by volume)")
    ap.add_argument("--compresslevel", type=int, default=Params.compresslevel)
    args = ap.parse_args(argv)
    params = Params(days=args.days, accounts=args.accounts, records=args.records, seed=args.seed,
                    end=_parse_end(args.end), file_minutes=args.file_minutes, compresslevel=args.compresslevel)
    try:
        report = generate(args.out_dir, params, progress=lambda m: print(m, file=sys.stderr))
    except GenerateError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    print(f"{report.records:,} records ({report.read_only / report.records:.1%} read-only) in {report.files:,} "
          f"files under {report.out_dir} in {report.seconds:.1f}s")
    for inc in report.incidents:
        print(f"  {inc.name:17} {inc.account_name:8} {inc.region:15} {inc.actor:11} {inc.at}  {inc.what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
