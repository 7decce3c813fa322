"""`dd0c-cost-agent`: forward CloudTrail from a directory, an S3 bucket or SQS notifications to dd0c/cost.

One process, two threads: the reader thread (sources -> reader -> batches -> spool, agent/batcher.py) and the
network loop (spool -> gRPC -> acks, agent/sender.py). Every flag has an environment variable (DD0C_AGENT_<FLAG>,
agent/settings.py); flags win. Exit status: 0 done (`--once`) or stopped by a signal, 1 bad configuration or a
source that failed under `--once`, 2 refused by the server (token), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading

from agent.settings import AgentSettings, load_agent_settings
from schemas.events import Dd0cError

log = logging.getLogger("dd0c.agent")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dd0c-cost-agent", description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", help="host:port of the ingestion server [DD0C_AGENT_SERVER, 127.0.0.1:50051]")
    ap.add_argument("--dir", help="watch this directory for CloudTrail files [DD0C_AGENT_DIR]")
    ap.add_argument("--s3-bucket", help="list this bucket for new objects [DD0C_AGENT_S3_BUCKET]")
    ap.add_argument("--s3-prefix", help="only keys under this prefix [DD0C_AGENT_S3_PREFIX]")
    ap.add_argument("--sqs-queue-url", help="read S3 object notifications from this queue [DD0C_AGENT_SQS_QUEUE_URL]")
    ap.add_argument("--aws-region", help="[DD0C_AGENT_AWS_REGION, else the AWS default chain]")
    ap.add_argument("--aws-endpoint-url", help="S3/SQS-compatible endpoint [DD0C_AGENT_AWS_ENDPOINT_URL]")
    ap.add_argument("--ca-file", help="CA bundle that signed the server's certificate [DD0C_AGENT_CA_FILE]")
    ap.add_argument("--cert-file", help="client certificate for mutual TLS [DD0C_AGENT_CERT_FILE]")
    ap.add_argument("--key-file", help="its private key [DD0C_AGENT_KEY_FILE]")
    ap.add_argument("--server-name", help="name expected in the server certificate [DD0C_AGENT_SERVER_NAME]")
    ap.add_argument("--insecure", action="store_true", default=None, help="plaintext, no TLS [DD0C_AGENT_INSECURE]")
    ap.add_argument("--spool", help="spool directory [DD0C_AGENT_SPOOL, .dd0c-agent]")
    ap.add_argument("--batch-records", type=int,
                    help="records of split objects per batch [DD0C_AGENT_BATCH_RECORDS, 500]")
    ap.add_argument("--batch-bytes", type=int, help="bytes per batch [DD0C_AGENT_BATCH_BYTES, 2 MiB]")
    ap.add_argument("--whole-file-bytes", type=int,
                    help="objects up to this size are sent as they are, bigger ones split [1 MiB]")
    ap.add_argument("--max-unacked", type=int, help="unacknowledged batches at most [DD0C_AGENT_MAX_UNACKED, 8]")
    ap.add_argument("--poll-interval", type=float, help="seconds between looks at the sources [5]")
    ap.add_argument("--compression", action="store_true", default=None, help="gzip on the wire")
    ap.add_argument("--once", action="store_true", default=None,
                    help="read what the sources hold now, wait for every ack, exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k, v in vars(args).items() if k != "verbose"}
    try:
        settings = load_agent_settings(**overrides)
        return asyncio.run(run(settings))
    except Dd0cError as exc:
        from agent.sender import Refused

        print(f"dd0c-cost-agent: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, Refused) else 1
    except KeyboardInterrupt:
        return 130


async def run(settings: AgentSettings) -> int:
    """Run until done (`once`), a signal, or a refusal; returns the exit status."""
    from agent.batcher import Batcher, Window
    from agent.sender import Sender
    from agent.sources import open_sources
    from agent.spool import Spool

    loop = asyncio.get_running_loop()
    spool = Spool(settings.spool, sync_acks=False)
    orphans = spool.remove_orphans()
    if orphans:
        log.info("removed %d batch file(s) spooled but never recorded (a crash mid-write); read again", orphans)
    window = Window(settings.max_unacked, spool.unacked())
    wake, reading_done, stop = asyncio.Event(), asyncio.Event(), threading.Event()
    failures: list[str] = []
    fatal: list[bool] = []  # the reader could not start: exit 1 whatever the mode
    log.info("agent %s: spool %s holds %d unacknowledged batch(es); sending to %s", spool.agent_id, spool.path,
             window.unacked, settings.server)

    def spooled() -> None:
        loop.call_soon_threadsafe(wake.set)

    def reader() -> None:
        own = Spool(settings.spool)  # SQLite: one connection per thread
        try:
            sources = open_sources(settings, own)
            batcher = Batcher(own, window, stop, batch_records=settings.batch_records,
                              batch_bytes=settings.batch_bytes, whole_file_bytes=settings.whole_file_bytes,
                              on_spooled=spooled)
            while not stop.is_set():
                try:
                    batcher.look(sources)
                except Exception as exc:  # a source's failure (S3 down, a permission): log, look again later
                    failures.append(f"{type(exc).__name__}: {exc}")
                    log.error("reading the sources failed: %s: %s", type(exc).__name__, exc)
                    if settings.once:
                        break
                if settings.once:
                    break
                stop.wait(settings.poll_interval)
            log.info("reader: %d object(s) sent whole, %d split (%d record(s)), in %d batch(es)",
                     batcher.whole_objects, batcher.split_objects, batcher.read_records, batcher.spooled_batches)
        except Exception as exc:  # opening a source (bad AWS settings): the agent cannot work
            failures.append(f"{type(exc).__name__}: {exc}")
            fatal.append(True)
            log.error("cannot open the sources: %s: %s", type(exc).__name__, exc)
        finally:
            own.close()
            loop.call_soon_threadsafe(lambda: (reading_done.set(), wake.set()))

    thread = threading.Thread(target=reader, name="dd0c-agent-reader", daemon=True)
    thread.start()
    sender = Sender(settings, spool, window, wake, reading_done)
    task = asyncio.create_task(sender.run())
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    status = 0
    try:
        await task
    except asyncio.CancelledError:
        log.info("stopping: %d unacknowledged batch(es) stay in the spool for the next start", spool.unacked())
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
        spool.close()
    if fatal or (failures and settings.once):
        status = 1
    log.info("peak resident memory: %.1f MB", peak_rss_mb())
    return status


def peak_rss_mb() -> float:
    """This process's own peak RSS. VmHWM belongs to the memory map made at exec; getrusage's maxrss would also
    count a parent's pages seen before exec (a forked launcher), so it is only the fallback off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
