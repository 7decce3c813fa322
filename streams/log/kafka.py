"""The log on Kafka (scale-out backend), producer side: topic spec from settings, topic creation, append.

Selected by `DD0C_LOG_URL=kafka://host:port[,host:port]`. Every entry goes to one raw topic, keyed by
"<tenant>/<account_id>": the default partitioner hashes the key, so one partition - hence one worker - owns an
account's baselines, and the account's entries keep their append order.

What differs from the Postgres backend (streams/log/postgres.py), on purpose:

* **No dedup here.** Kafka cannot refuse a second copy of (tenant, account, eventID); a re-sent file, and a
  producer retry when idempotence is off, put it on the topic again. The consumer side dedupes, in the Postgres
  transaction that also stores its (topic, partition, offset): the projection writers insert ON CONFLICT on
  their keys, and - because a baseline upsert adds to a Welford state, so a second copy would count twice - the
  worker must gate each entry on its (tenant, account, eventID) before folding it. `AppendResult.duplicate` is
  therefore always 0 here; with the Postgres backend the `log` table stays the dedup store.
* **Read-only counts go to Postgres** (`log_read_only_counts`, the table the Postgres backend fills, so readers
  look in one place) when the KafkaLog is given a pool; without one they are only counted in the AppendResult
  and the caller decides. Read-only entries are produced only with `keep_read_only`, as in the Postgres log.
* **Same acceptance rule.** An entry the Postgres log would reject (NaN, NUL, unencodable text) is rejected here
  too, so the same input gives the same projections whichever backend carried it.
* **Ordering on retry.** aiokafka keeps at most one batch in flight per partition, so a retried batch cannot
  overtake a later one; idempotence (on by default) also stops the retry from writing the batch twice. The
  tansu test broker does not grant producer ids (InitProducerId fails), so its tests turn idempotence off.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date
from types import TracebackType
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from ops.settings import Settings, load_settings
from projections.rows import decode_entry, encode_entry
from schemas.events import Dd0cError, LogEntry, Rejected
from streams.log.postgres import COUNT_READ_ONLY, AppendResult, storable_record

log = logging.getLogger("dd0c.log.kafka")

SCHEME = "kafka://"
_TOPIC_EXISTS = TopicAlreadyExistsError.errno  # 36
_MAX_BACKOFF = 30.0  # seconds; the doubling stops here


class KafkaLogError(Dd0cError):
    """The Kafka log cannot do its job: bad settings, broker unreachable, a produce that was not acknowledged."""


@dataclass(frozen=True, slots=True)
class KafkaSpec:
    """Where the log lives on Kafka and how its topic is made. Built from Settings by `from_settings`."""

    bootstrap: str  # "host:port[,host:port]" as aiokafka takes it
    topic: str = "dd0c.cloudtrail.raw"
    partitions: int = 12
    replication_factor: int = 1
    retention_ms: int = -1  # -1 = infinite: the log is the truth
    idempotent: bool = True
    connect_attempts: int = 5
    retry_backoff: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> KafkaSpec:
        s = settings or load_settings()
        if not is_kafka_url(s.log_url):
            raise KafkaLogError(f"DD0C_LOG_URL={s.log_url!r} does not select the Kafka log (use kafka://host:port)")
        return cls(
            bootstrap=bootstrap_servers(s.log_url or ""),
            topic=s.kafka_topic,
            partitions=s.kafka_partitions,
            replication_factor=s.kafka_replication_factor,
            retention_ms=s.kafka_retention_ms,
            idempotent=s.kafka_idempotent,
            connect_attempts=s.kafka_connect_attempts,
            retry_backoff=s.kafka_retry_backoff,
        )


def is_kafka_url(url: str | None) -> bool:
    """True when DD0C_LOG_URL selects this backend (anything else, or unset, means the Postgres log)."""
    return url is not None and url.strip().lower().startswith(SCHEME)


def bootstrap_servers(url: str) -> str:
    """kafka://h1:9092,h2:9092/ -> "h1:9092,h2:9092"; every host needs an explicit numeric port."""
    body = url.strip()[len(SCHEME) :].strip("/")
    hosts = [h.strip() for h in body.split(",") if h.strip()]
    if not hosts:
        raise KafkaLogError(f"no broker in {url!r} (use kafka://host:port)")
    for host in hosts:
        name, sep, port = host.rpartition(":")
        if not sep or not name or not port.isdigit():
            raise KafkaLogError(f"broker {host!r} in {url!r} needs host:port")
    return ",".join(hosts)


def message_key(entry: LogEntry) -> bytes:
    """The partitioning key: one account of one tenant always hashes to the same partition."""
    return f"{entry.tenant}/{entry.account_id}".encode()


def decode_message(topic: str, partition: int, offset: int, value: bytes | None) -> LogEntry | Rejected:
    """A consumed message back to its LogEntry, or a Rejected that names the exact message (for dead letters)."""
    return decode_entry(value, source=f"kafka:{topic}", locator=f"partition={partition} offset={offset}")


# -- topic ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicInfo:
    created: bool  # False: it existed already (its settings were left as they are)
    partitions: int
    retention_ms: int | None  # None: the broker did not report one (its default applies)


async def ensure_topic(admin: AIOKafkaAdminClient, spec: KafkaSpec) -> TopicInfo:
    """Create the log topic if it is missing; an existing topic is never altered, only checked.

    Warns when an existing topic deletes data (finite retention.ms: replay could no longer rebuild from the start)
    or has another partition count than configured (more workers than partitions would sit idle).
    """
    topic = NewTopic(
        spec.topic,
        num_partitions=spec.partitions,
        replication_factor=spec.replication_factor,
        topic_configs={"retention.ms": str(spec.retention_ms)},
    )
    response = await admin.create_topics([topic])
    code, message = _topic_error(response, spec.topic)
    if code not in (0, _TOPIC_EXISTS):
        raise KafkaLogError(f"cannot create topic {spec.topic!r}: error {code} {message or ''}".rstrip())
    created = code == 0
    partitions = await _partition_count(admin, spec.topic)
    retention = await _retention_ms(admin, spec.topic)
    if not created:
        if retention is not None and retention >= 0:
            log.warning(
                "topic %s keeps data only %d ms (retention.ms): the log is the truth, and replay needs all of it;"
                " set retention.ms=-1",
                spec.topic,
                retention,
            )
        if partitions != spec.partitions:
            log.warning("topic %s has %d partitions, settings say %d", spec.topic, partitions, spec.partitions)
    else:
        log.info("created topic %s: %d partitions, retention.ms=%s", spec.topic, partitions, retention)
    return TopicInfo(created, partitions, retention)


def _topic_error(response: Any, topic: str) -> tuple[int, str | None]:
    for item in response.topic_errors:
        if item[0] == topic:
            return int(item[1]), (item[2] if len(item) > 2 else None)
    raise KafkaLogError(f"the broker did not answer for topic {topic!r}")


async def _partition_count(admin: AIOKafkaAdminClient, topic: str) -> int:
    (described,) = await admin.describe_topics([topic])
    if described["error_code"]:
        raise KafkaLogError(f"cannot describe topic {topic!r}: error {described['error_code']}")
    return len(described["partitions"])


async def _retention_ms(admin: AIOKafkaAdminClient, topic: str) -> int | None:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    for response in responses:
        for resource in response.resources:
            for entry in resource[4]:  # (error_code, error_message, type, name, config_entries)
                if entry[0] == "retention.ms" and entry[1] is not None:
                    return int(entry[1])
    return None


# -- connecting with bounded retries ----------------------------------------------------------------------------


async def _with_retries(what: str, spec: KafkaSpec, start: Any, stop: Any) -> None:
    """Run `start()`; on a connection error `stop()` and retry with doubling backoff, then give up clearly.

    Bounded on purpose: a service started before its broker must say so and exit (its supervisor restarts it),
    not spin forever or hang.
    """
    delay = spec.retry_backoff
    for attempt in range(1, spec.connect_attempts + 1):
        try:
            await start()
            return
        except KafkaConnectionError as exc:
            await stop()  # a half-started client holds sockets and tasks
            if attempt == spec.connect_attempts:
                raise KafkaLogError(
                    f"Kafka at {spec.bootstrap} unreachable: {what} failed {attempt} times ({exc});"
                    " is the broker running and DD0C_LOG_URL right?"
                ) from exc
            log.warning(
                "Kafka at %s unreachable (%s, attempt %d of %d); retrying in %.2fs",
                spec.bootstrap,
                what,
                attempt,
                spec.connect_attempts,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)


async def connect_admin(spec: KafkaSpec) -> AIOKafkaAdminClient:
    """A started admin client (bounded retries; KafkaLogError when the broker stays unreachable)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=spec.bootstrap, client_id="dd0c-admin")
    await _with_retries("admin connect", spec, admin.start, admin.close)
    return admin


# -- the log ----------------------------------------------------------------------------------------------------


class KafkaLog:
    """Appends LogEntries to the raw topic. `async with KafkaLog(spec) as kl: await kl.append(entries)`.

    `counts`: a pool on the projection database for the read-only counts (see the module docstring).
    """

    def __init__(
        self,
        spec: KafkaSpec,
        *,
        counts: asyncpg.Pool | None = None,
        keep_read_only: bool | None = None,
        create_topic: bool = True,
    ) -> None:
        self.spec = spec
        self._counts = counts
        self._keep_read_only = load_settings().keep_read_only if keep_read_only is None else keep_read_only
        self._create_topic = create_topic
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._create_topic:
            admin = await connect_admin(self.spec)
            try:
                await ensure_topic(admin, self.spec)
            finally:
                await admin.close()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.spec.bootstrap,
            client_id="dd0c-log",
            acks="all",  # an append returns only once every in-sync replica has the entry
            enable_idempotence=self.spec.idempotent,
            linger_ms=5,  # a few ms of batching: appends come in batches anyway
        )
        await _with_retries("producer start", self.spec, producer.start, producer.stop)
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()  # flushes what is still buffered

    async def __aenter__(self) -> KafkaLog:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def append(self, entries: Sequence[LogEntry]) -> AppendResult:
        """Produce `entries` in their order and wait until the broker acknowledged every one (acks=all).

        Returns counts like the Postgres backend (duplicate is always 0: see the module docstring). If the broker
        fails mid-batch a KafkaLogError is raised; the entries already acknowledged stay on the topic, and
        appending the batch again is safe because the consumer side dedupes.
        """
        if not entries:
            return AppendResult()
        (result,) = await self.append_runs([entries])
        return result

    async def append_runs(self, runs: Sequence[Sequence[LogEntry]]) -> list[AppendResult]:
        """`append` for several runs at once (the ingester: one run per file or chunk of one), in order.

        Every entry of every run is queued before any acknowledgement is awaited, so a bucket of small files
        costs one round of acks per call instead of one per file; result i is what `append(runs[i])` returns.
        """
        if self._producer is None:
            raise KafkaLogError("KafkaLog.append before start() (use `async with KafkaLog(spec)`)")
        rejected: list[list[Rejected]] = [[] for _ in runs]
        counted = [0] * len(runs)
        produced = [0] * len(runs)
        read_only: Counter[tuple[str, str, date]] = Counter()
        pending: list[asyncio.Future[Any]] = []
        try:
            for index, entries in enumerate(runs):
                for entry in entries:
                    if entry.read_only and not self._keep_read_only:
                        read_only[(entry.tenant, entry.account_id, entry.event_time.astimezone(UTC).date())] += 1
                        counted[index] += 1
                        continue
                    record_json = storable_record(entry)
                    if isinstance(record_json, Rejected):
                        rejected[index].append(record_json)
                        continue
                    value = encode_entry(entry, record_json)
                    # send() only queues (it waits when the buffer is full); the acks are awaited together below
                    pending.append(await self._producer.send(self.spec.topic, value, key=message_key(entry)))
                    produced[index] += 1
            await asyncio.gather(*pending)
        except KafkaError as exc:
            for future in pending:  # do not leave "exception never retrieved" behind
                if future.done() and not future.cancelled():
                    future.exception()
            raise KafkaLogError(f"append to {self.spec.topic} at {self.spec.bootstrap} failed: {exc!r}") from exc
        if read_only and self._counts is not None:
            await _store_read_only_counts(self._counts, read_only)
        return [
            AppendResult(logged=produced[i], duplicate=0, read_only_counted=counted[i], rejected=tuple(rejected[i]))
            for i in range(len(runs))
        ]


async def _store_read_only_counts(pool: asyncpg.Pool, counts: Counter[tuple[str, str, date]]) -> None:
    keys = list(counts)
    async with pool.acquire() as conn:
        await conn.execute(
            COUNT_READ_ONLY,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [counts[k] for k in keys],
        )
