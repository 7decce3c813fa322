"""The first run, end to end: database, migrations, history, fold, a user, then the worker and the API.

Nothing has to be configured. Without DATABASE_URL an embedded PostgreSQL (the pgserver wheel) starts under the
data dir and keeps running after the demo (the next command attaches to it; `dd0c-cost demo --stop` ends it);
without REDIS_URL either, so does an embedded Redis (ops/embedded_redis.py), and the notifier runs beside the API.
The process runs with DD0C_MODE=demo, so the built-in JWT secret is accepted - never do that in production.

What gets ingested:
* the shipped corpus of real public CloudTrail files (ops/corpus/cloudtrail). Some of its files are broken on
  purpose (truncated JSON, wrong field types, digests): they are rejected with their reasons and the demo
  goes on - that is what a real bucket looks like;
* a generated four-account history ending now (ops/demo/generate.py), written once under the data dir and
  reused afterwards, ingested in delivery order so baselines learn it as it happened;
* five made-up zombies across those accounts (ops/demo/zombies.py), appended as `ZombieDetected` entries and
  folded into the zombies projection like a real scan's.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ops.demo.generate import GENERATOR_VERSION, Params, delivery_files, generate, read_manifest
from ops.embedded import quiet
from ops.settings import DEFAULT_DATA_DIR, Settings, load_settings
from schemas.events import Dd0cError

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "cloudtrail"
DEMO_USER = "demo"
LOGIN_FILE = "demo-login.json"  # under the data dir: the generated demo password, so a re-run can print it again
HISTORY_DIR = "history"
# About 20 s of generate + ingest + fold on two busy cores (well inside the minute the demo may take); the
# baselines do not need more: the cost-relevant calls are the same whatever the volume of read-only ones.
DEMO_RECORDS = 300_000


class DemoError(Dd0cError):
    """The demo cannot go on (a step failed); the message says which and what to do."""


@dataclass(frozen=True)
class DemoOptions:
    api: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    records: int = DEMO_RECORDS
    days: int = 21
    accounts: int = 4
    seed: int = 7
    corpus: bool = True


@dataclass
class Prepared:
    url: str
    embedded: bool
    password: str
    manifest: dict[str, Any]
    top: list[dict[str, Any]]
    burning: tuple[int, float]  # running resources, $/h
    zombies: tuple[int, float] = (0, 0.0)  # open zombies, monthly waste $
    redis_url: str | None = None  # panic mode, flags, breakers; None = notifications off in this demo


def _say(out: TextIO, text: str = "") -> None:
    print(text, file=out, flush=True)


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}" if ":" in creds else url


def command() -> str:
    """How the person reading the summary calls dd0c-cost: by name if their shell finds this install, else its path
    (after `make demo` the venv is usually not activated, and a bare `dd0c-cost` would not be found)."""
    script = Path(sys.executable).parent / "dd0c-cost"
    found = shutil.which("dd0c-cost")
    if found and Path(found).resolve() == script.resolve():
        return "dd0c-cost"
    relative = os.path.relpath(script)
    return relative if not relative.startswith("..") else str(script)


def _cli(*args: str) -> list[str]:
    """A dd0c-cost sub-command run with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "ops", *args]


# --- the steps ----------------------------------------------------------------------------------------------


def database(settings: Settings, out: TextIO) -> tuple[str, bool]:
    if settings.database_url:
        _say(out, f"database: {_redact(settings.database_url)} (DATABASE_URL)")
        return settings.database_url, False
    from ops.embedded import embedded_database_url

    _say(out, f"database: starting the embedded PostgreSQL under {settings.data_dir / 'pgdata'} ...")
    url = embedded_database_url(settings.data_dir)
    if url is None:  # only with start=False
        raise DemoError("the embedded PostgreSQL did not start")
    return url, True


def redis(settings: Settings, embedded_db: bool, out: TextIO) -> str | None:
    """REDIS_URL if set; with the embedded database also an embedded Redis; otherwise none (nothing is sent)."""
    if settings.redis_url:
        _say(out, f"redis: {_redact(settings.redis_url)}")
        return settings.redis_url
    if not embedded_db:  # the user runs their own PostgreSQL: an embedded Redis beside it would surprise them
        _say(out, "redis: none (REDIS_URL is not set): panic mode and notifications are off in this demo")
        return None
    from ops import embedded_redis

    _say(out, f"redis: starting the embedded Redis under {settings.data_dir / 'redis'} ...")
    return embedded_redis.start(settings.data_dir)


async def _ingest(url: str, paths: Sequence[Path], tenant: str, out: TextIO, *, label: str) -> Any:
    from ops.ingest import ingest
    from projections.db import connect

    err = io.StringIO()
    began = time.perf_counter()
    conn = await connect(url)
    try:
        report = await ingest(conn, list(paths), tenant=tenant, progress=None, err=err)
    finally:
        await conn.close()
    total = report.total()
    fresh = sum(1 for f in report.files if f.status == "ingested")
    _say(out, f"{label}: {len(report.files)} files ({fresh} new), {total.read:,} records read, "
              f"{total.logged:,} logged, {total.read_only_counted:,} read-only counted, "
              f"{total.rejected} rejected  [{time.perf_counter() - began:.1f}s]")
    return report, err.getvalue()


def _show_rejections(report: Any, messages: str, out: TextIO, limit: int = 12) -> None:
    """One line per file that had rejections: how many, the first reason and how many other reasons (the full list
    is in dead_letters)."""
    if not report.rejected:
        return
    _say(out, "  expected: the shipped corpus keeps real broken files (see ops/corpus/cloudtrail/SOURCES.md); "
              "their bad records are rejected with a reason and kept in dead_letters:")
    by_file: dict[str, list[str]] = {}
    for line in messages.splitlines():
        text = line.removeprefix("dd0c-cost ingest: rejected ").strip()
        if not text:
            continue
        where, _, reason = text.partition(": ")
        path = where.split("#", 1)[0]
        by_file.setdefault(path, []).append(reason)
    root = str(CORPUS) + os.sep
    for path, reasons in list(by_file.items())[:limit]:
        first = reasons[0] if len(reasons[0]) <= 80 else reasons[0][:77] + "..."
        others = len(set(reasons)) - 1  # one file can be broken in several ways: do not let the first stand for all
        more = f"; and {others} other reason{'s' if others > 1 else ''}: `dead-letters` lists them" if others else ""
        _say(out, f"    {path.removeprefix(root)}: {len(reasons)} rejected ({first}{more})")
    if len(by_file) > limit:
        _say(out, f"    ... and {len(by_file) - limit} more files")


def history(data_dir: Path, opts: DemoOptions, out: TextIO) -> tuple[Path, dict[str, Any]]:
    """The generated history under the data dir: generated (ending now) only when missing or different."""
    where = data_dir / HISTORY_DIR
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    wanted = Params(days=opts.days, accounts=opts.accounts, records=opts.records, seed=opts.seed, end=now)
    found = read_manifest(where)
    if found and found.get("complete") and found.get("generator_version") == GENERATOR_VERSION:
        same = {k: v for k, v in found["params"].items() if k != "end"}
        if same == {k: v for k, v in wanted.to_json().items() if k != "end"}:
            _say(out, f"history: reusing {where} ({found['records']:,} records ending {found['params']['end']})")
            return where, found
    _say(out, f"history: generating {opts.records:,} records, {opts.days} days x {opts.accounts} accounts "
              f"under {where} ...")
    report = generate(where, wanted)
    _say(out, f"history: {report.files:,} files in {report.seconds:.1f}s")
    return where, report.manifest()


async def plant_zombies(url: str, manifest: dict[str, Any], tenant: str, out: TextIO) -> None:
    """Append the demo's zombies (detected at the history's end) to the log; the fold makes the projection."""
    from ops.demo.zombies import demo_entries, detections
    from projections.db import create_pool
    from streams.log.writer import open_log_writer
    from streams.prices.table import load_default_prices

    end = datetime.fromisoformat(str(manifest["params"]["end"]).replace("Z", "+00:00"))
    entries = demo_entries(tenant, manifest.get("accounts", []), end, load_default_prices(),
                           ingested_at=datetime.now(UTC))
    pool = await create_pool(url)
    try:
        async with open_log_writer(pool) as writer:
            appended = await writer.append(entries)
    finally:
        await pool.close()
    _say(out, f"zombies: {detections(entries)} synthetic zombies ({appended.logged} new log entries) appended as"
              " ZombieDetected, with one made-up scan per account")


def drain(url: str, env: dict[str, str], out: TextIO) -> None:
    began = time.perf_counter()
    done = subprocess.run(_cli("worker", "--drain"), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise DemoError(f"`dd0c-cost worker --drain` failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    summary = [ln for ln in done.stderr.splitlines() if "worker stopped" in ln]
    tail = summary[-1].split(": ", 1)[-1] if summary else "done"
    _say(out, f"fold: {tail}  [{time.perf_counter() - began:.1f}s]")


def demo_user(data_dir: Path, env: dict[str, str]) -> str:
    """Create (or reset) the `demo` user; its random password is kept under the data dir and printed each run."""
    login = data_dir / LOGIN_FILE
    try:
        password = json.loads(login.read_text(encoding="utf-8"))["password"]
    except (OSError, ValueError, KeyError):
        password = secrets.token_urlsafe(12)
        login.parent.mkdir(parents=True, exist_ok=True)
        login.write_text(json.dumps({"username": DEMO_USER, "password": password}) + "\n", encoding="utf-8")
        login.chmod(0o600)
    # --replace: idempotent, and re-running the demo always leaves the password that is printed
    add = subprocess.run(_cli("users", "add", DEMO_USER, "--password-stdin", "--replace"), input=password + "\n",
                         env=env, capture_output=True, text=True)
    if add.returncode != 0:
        raise DemoError(f"`dd0c-cost users add {DEMO_USER}` failed:\n{(add.stdout + add.stderr)[-2000:]}")
    return password


async def open_zombies(url: str, tenant: str) -> tuple[int, float]:
    """Open zombies and their monthly waste, as `GET /v1/zombies` totals them."""
    from projections.db import connect
    from projections.zombies.queries import zombie_totals

    conn = await connect(url)
    try:
        totals = await zombie_totals(conn, tenant)
    finally:
        await conn.close()
    return int(totals["count"]), float(totals["monthly_waste_usd"])


async def top_anomalies(url: str, tenant: str, limit: int = 10) -> tuple[list[dict[str, Any]], tuple[int, float]]:
    from projections.db import connect

    conn = await connect(url)
    try:
        rows = await conn.fetch(
            "SELECT data FROM anomalies WHERE tenant_id = $1"
            " ORDER BY severity_rank DESC, hourly_cost DESC NULLS LAST, event_time DESC LIMIT $2",
            tenant, limit,
        )
        running = await conn.fetchrow(
            "SELECT count(*) AS n, coalesce(sum(hourly_cost), 0) AS cost FROM resources"
            " WHERE tenant_id = $1 AND state = 'running'", tenant,
        )
    finally:
        await conn.close()
    return [r["data"] for r in rows], (int(running["n"]), float(running["cost"]))


def format_top(top: list[dict[str, Any]], names: dict[str, str]) -> str:
    if not top:
        return "  (no anomalies)"
    head = ("account", "severity", "resource", "$/h", "why")
    rows = []
    for a in top:
        # the id is what the API and CLI filter on; the generator's name is only a reading aid
        name = names.get(a["account_id"], "")
        account = f"{a['account_id']} ({name})" if name else a["account_id"]
        resource = a["resource_type"] + (f" {a['instance_type']}" if a.get("instance_type") else "")
        resource += f" ({a['region']})"
        cost = "unpriced" if a.get("hourly_cost") is None else f"{a['hourly_cost']:,.2f}"
        why = "; ".join(r["text"] for r in a.get("reasons", []))
        rows.append((account, a["severity"], resource, cost, why if len(why) <= 90 else why[:87] + "..."))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head[:4])]

    def line(cells: Sequence[str]) -> str:
        return "  " + "  ".join([cells[0].ljust(widths[0]), cells[1].ljust(widths[1]), cells[2].ljust(widths[2]),
                                 cells[3].rjust(widths[3]), cells[4]])

    return "\n".join([line(head), *(line(r) for r in rows)])


def prepare(opts: DemoOptions, out: TextIO) -> Prepared:
    """Everything before the long-running processes: database, migrations, ingest, fold, user, summary."""
    os.environ["DD0C_MODE"] = "demo"
    quiet()
    settings = load_settings()
    data_dir = settings.data_dir
    # 0700: it holds the database and the demo password (and pgserver wants a private runtime dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    url, embedded = database(settings, out)
    redis_url = redis(settings, embedded, out)
    env = {**os.environ, "DATABASE_URL": url, "DD0C_MODE": "demo"}

    from ops.migrate import migrate

    applied = asyncio.run(migrate(url))
    _say(out, f"migrate: {len(applied)} migration(s) applied" if applied else "migrate: up to date")

    if opts.corpus:
        report, messages = asyncio.run(_ingest(url, [CORPUS], settings.tenant, out, label="corpus"))
        _show_rejections(report, messages, out)
    where, manifest = history(data_dir, opts, out)
    report, messages = asyncio.run(_ingest(url, delivery_files(where), settings.tenant, out, label="history"))
    if report.rejected:  # our own files must all read; a rejection here is a bug somewhere
        _say(out, f"warning: {report.rejected} generated records were rejected:")
        _show_rejections(report, messages, out)
    asyncio.run(plant_zombies(url, manifest, settings.tenant, out))
    drain(url, env, out)
    password = demo_user(data_dir, env)
    top, burning = asyncio.run(top_anomalies(url, settings.tenant))
    zombies = asyncio.run(open_zombies(url, settings.tenant))
    return Prepared(url, embedded, password, manifest, top, burning, zombies, redis_url)


def _redis_hints(p: Prepared, out: TextIO, *, serving: bool) -> None:
    if not p.redis_url:  # panic mode, flags and breakers live in Redis
        _say(out, "Panic mode and notifications need Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379/0) to try them.")
        return
    cmd = command()
    _say(out, f"Panic:   {cmd} panic on --reason 'trying it'   (then `{cmd} panic status`; "
              f"`{cmd} panic off --reason done`)")
    if serving:
        _say(out, f"Notify:  {cmd} notify config --slack-webhook - --email you@example.com   "
                  f"(the notifier is running; `{cmd} notify preview alert` shows a Slack message)")


def print_summary(p: Prepared, opts: DemoOptions, out: TextIO) -> None:
    names = {a["account_id"]: a["name"] for a in p.manifest.get("accounts", [])}
    base = f"http://{opts.host}:{opts.port}"
    _say(out)
    _say(out, "Top anomalies:")
    _say(out, format_top(p.top, names))
    _say(out, f"Running now: {p.burning[0]} resources burning ${p.burning[1]:,.2f}/h")
    from streams.notify.messages import cents  # half-up, as the digest prints the same total

    _say(out, f"Zombies: {p.zombies[0]} open, wasting {cents(p.zombies[1])}/month (GET /v1/zombies)")
    _say(out)
    settings = load_settings()
    _say(out, f"Login:   {DEMO_USER} / {p.password}   (kept in {settings.data_dir / LOGIN_FILE})")
    if p.embedded and settings.data_dir.resolve() != DEFAULT_DATA_DIR.resolve():
        # Other shells would otherwise start a second, empty embedded server under the default data dir.
        _say(out, f"Shell:   export DD0C_DATA_DIR={shlex.quote(str(settings.data_dir.resolve()))}   (in every other "
                  "shell, so the commands below find this demo's database and Redis)")
    if not opts.api:
        _redis_hints(p, out, serving=False)
        cmd = command()
        _say(out, f"API not started (--no-api). Start them with `DD0C_MODE=demo {cmd} api` and "
                  f"`{cmd} worker` (or run `{cmd} demo` again without --no-api).")
        return
    _say(out, f"Open:    {base}/   (the dashboard; sign in with the login above)")
    _say(out, f"API:     {base}/docs")
    login = (f"curl -s -X POST {base}/v1/auth/login -H 'content-type: application/json' "
             f"-d '{{\"username\": \"{DEMO_USER}\", \"password\": \"{p.password}\"}}'")
    pick = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
    _say(out, f"Token:   TOKEN=$({login} | {pick})")
    _say(out, f"List:    curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/v1/anomalies?severity=high&limit=5'")
    ws = f"ws://{opts.host}:{opts.port}/v1/feed?token=$TOKEN&after=0"
    _say(out, f"Feed:    websocat \"{ws}\"")
    _say(out, f"   or:   {sys.executable} -m websockets \"{ws}\"")
    _say(out, f"Idle:    curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/v1/zombies'")
    _redis_hints(p, out, serving=True)
    _say(out)
    who, keeps = ("Worker and API", "database keeps")
    if p.redis_url:
        who, keeps = "Worker, API and notifier", "database and Redis keep"
    _say(out, f"{who} are running; Ctrl-C stops them (the {keeps} running: `{command()} demo --stop`).")


def _wait_http(url: str, proc: subprocess.Popen[bytes], stopping: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping:
        if proc.poll() is not None:
            if stopping:
                return
            raise DemoError(f"the API exited with status {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    if not stopping:
        raise DemoError(f"the API did not answer {url} within {timeout:.0f}s")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        # As uvicorn binds: SO_REUSEADDR, so the TIME-WAIT sockets a stopped demo leaves behind are not "in use".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def serve(p: Prepared, opts: DemoOptions, out: TextIO) -> int:
    """Worker (following the log) and API as child processes until Ctrl-C / SIGTERM or one of them exits."""
    env = {**os.environ, "DATABASE_URL": p.url, "DD0C_MODE": "demo"}
    if p.redis_url:
        env["REDIS_URL"] = p.redis_url
    env.setdefault("DD0C_PUBLIC_URL", f"http://{opts.host}:{opts.port}")  # the notifier's links: this demo's API
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signal.Signals(signum).name)

    # Our own handlers, not KeyboardInterrupt: they also work when the shell started us with SIGINT ignored, and
    # the flag is set before the children (which get the same Ctrl-C) can exit and look like a crash.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        procs.append(("worker", subprocess.Popen(_cli("worker"), env=env)))
        if p.redis_url:  # Slack and the digest for whoever runs `dd0c-cost notify config`
            procs.append(("notifier", subprocess.Popen(_cli("notify", "daemon"), env=env)))
        api = subprocess.Popen(_cli("api", "--host", opts.host, "--port", str(opts.port)), env=env)
        procs.append(("api", api))
        _wait_http(f"http://{opts.host}:{opts.port}/docs", api, stopping)
        if not stopping:
            print_summary(p, opts, out)
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    _say(out, f"{name} exited with status {proc.returncode}; stopping the demo")
                    return 1
            time.sleep(0.3)
        _say(out, f"\n{stopping[0]}: stopping {', '.join(name for name, _ in procs)} ...")
        return 0
    finally:
        _stop(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for _, proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(opts: DemoOptions, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if opts.api and not _port_free(opts.host, opts.port):  # say so now, not after the whole ingest
        raise DemoError(f"{opts.host}:{opts.port} is already in use (another demo?); choose a port with --port "
                        f"or stop the other server")
    began = time.perf_counter()
    prepared = prepare(opts, out)
    _say(out, f"ready in {time.perf_counter() - began:.0f}s")
    if not opts.api:
        print_summary(prepared, opts, out)
        return 0
    return serve(prepared, opts, out)


def stop(out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from ops import embedded_redis
    from ops.embedded import stop_embedded

    quiet()
    data_dir = load_settings().data_dir
    if stop_embedded(data_dir):
        _say(out, f"stopped the embedded PostgreSQL under {data_dir / 'pgdata'}")
    else:
        _say(out, f"no embedded PostgreSQL is running under {data_dir / 'pgdata'}")
    if embedded_redis.stop(data_dir):
        _say(out, f"stopped the embedded Redis under {data_dir / 'redis'}")
    return 0
