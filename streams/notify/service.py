"""The notifier: a loop of its own (`dd0c-cost notify daemon`) that reads committed anomalies after its cursor and
tells people, so a slow webhook or a dead SMTP server never holds up the fold.

Per tenant, in feed order, each anomaly gets exactly one recorded Slack outcome; the record and the cursor move in
one transaction. Sending happens before that transaction: a crash in between sends the message again on restart
(at-least-once), a restart after it sends nothing again. Tenants are handled concurrently, so one tenant's hanging
webhook costs the others nothing.

Governance comes from Redis right before each send: panic (suppressed, with who and why), the breaker, the flags.
When Redis cannot be asked, the anomaly is recorded `held` and the tenant stops there (the cursor stays before
it) until Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from projections.db import connect
from streams.notify import store
from streams.notify.channels import Outcome, SmtpConfig, deliver, post_slack, send_email
from streams.notify.digest import MAX_LISTED, TOP_ACCOUNTS, Digest, email_message
from streams.notify.governance import Governance, GovernanceUnavailable
from streams.notify.messages import slack_alert, slack_storm
from streams.notify.rules import decide
from streams.pipeline import FEED_CHANNEL

log = logging.getLogger("dd0c.notify")

_LOCK_KEY = 0x0DD0C0A1  # one active notifier per database; a second one waits as a hot standby


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    base_url: str = "http://127.0.0.1:8080"
    smtp: SmtpConfig = field(default_factory=lambda: SmtpConfig("127.0.0.1", 25, "dd0c-cost@localhost"))
    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 1.0
    poll_interval: float = 5.0
    digest_hour: int = 8
    page: int = 100

    @classmethod
    def from_settings(cls, settings: Any) -> NotifierConfig:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            base_url=settings.link_base,
            smtp=SmtpConfig(settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_user, password,
                            settings.smtp_starttls),
            timeout=settings.notify_timeout,
            attempts=settings.notify_attempts,
            backoff=settings.notify_backoff,
            poll_interval=settings.notify_poll_interval,
            digest_hour=settings.notify_digest_hour,
        )


@dataclass(slots=True)
class Pass:
    """What one pass over a tenant did (for logs and tests)."""

    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    held: int = 0
    storms: int = 0


class Notifier:
    def __init__(
        self,
        pool: asyncpg.Pool,
        governance: Governance,
        config: NotifierConfig,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tenant: str | None = None,
    ) -> None:
        self._pool = pool
        self._gov = governance
        self._cfg = config
        self._http = http or httpx.AsyncClient()
        self._own_http = http is None
        self._clock = clock
        self._tenant = tenant

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # ------------------------------------------------------------------------------------------------ alerts

    async def run_once(self) -> dict[str, Pass]:
        """One pass over every configured tenant, concurrently: everything committed after each cursor."""
        tenants = await store.notify_tenants(self._pool, self._tenant)
        results = await asyncio.gather(*(self.process_tenant(t) for t in tenants), return_exceptions=True)
        out: dict[str, Pass] = {}
        for tenant, result in zip(tenants, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                # Postgres hiccups and bugs alike: this tenant is retried next pass, the others are not held up.
                log.error("notify: tenant %s: %s", tenant, result, exc_info=result)
                continue
            out[tenant] = result
        return out

    async def process_tenant(self, tenant: str) -> Pass:
        done = Pass()
        followed = -1  # the generation `follow` last brought the cursors to (at most once each: no spinning)
        while True:
            channels = await store.get_channels(self._pool, tenant)
            if channels is None:
                return done
            # Read before the page: every anomaly of an entry up to this horizon is then in the page's snapshot.
            horizon = await store.fold_horizon(self._pool, tenant)
            at = await store.position(self._pool, tenant)
            page = await store.pending(self._pool, tenant, at.feed_id, self._cfg.page, beyond=at.since_horizon)
            if at.behind(page.generation) and followed != page.generation:
                # A replay swapped tables in since: the rows after the cursor may be rebuilt history, not news.
                await store.follow(self._pool, tenant, page)
                followed = page.generation
                continue
            rows = page.rows
            for anomaly in rows:
                if not await self._one(tenant, channels, anomaly, done):
                    return done  # held: Redis is down, try again next pass from this anomaly
            if len(rows) < self._cfg.page:
                await store.caught_up(self._pool, tenant, horizon, page)
                return done

    async def _one(self, tenant: str, channels: store.Channels, anomaly: dict[str, Any], done: Pass) -> bool:
        """Decide, send and record one anomaly; False when it was held (stop this tenant for now)."""
        aid, feed_id, severity = anomaly["id"], anomaly["feed_id"], anomaly["severity"]

        def rec(status: str, reason: str = "", attempts: int = 0, **detail: Any) -> store.Record:
            return store.Record(tenant, "slack", "alert", status, reason, attempts, aid, feed_id, severity, detail)

        async def held(reason: str, attempts: int = 0) -> bool:
            done.held += 1
            log.warning("notify: tenant %s anomaly %s held: %s", tenant, aid, reason)
            await store.commit_outcome(self._pool, [rec("held", reason, attempts)], tenant, None)
            return False

        async def final(*records: store.Record) -> bool:
            await store.commit_outcome(self._pool, records, tenant, feed_id)
            return True

        if await store.delivery_status(self._pool, aid, "slack") in store.TERMINAL:
            return await final()  # recorded by an earlier run: only the cursor has to catch up
        now = self._clock()
        try:
            flags = await self._gov.flags(tenant)
        except GovernanceUnavailable as exc:
            return await held(str(exc))
        decision = decide(anomaly, flags, now, has_webhook=bool(channels.slack_webhook_url))
        if decision.action != "send":
            done.suppressed += 1
            return await final(rec("suppressed", decision.reason))
        try:
            panic = await self._gov.panic(tenant)
            admission = None if panic else await self._gov.admit(tenant, "slack", now)
        except GovernanceUnavailable as exc:
            return await held(str(exc))
        if panic is not None:
            done.suppressed += 1
            return await final(rec("suppressed", panic.text()))
        assert admission is not None and channels.slack_webhook_url is not None
        url = channels.slack_webhook_url
        lim = self._gov.limits
        if admission.verdict == "suppress":
            done.suppressed += 1
            return await final(rec("suppressed", "circuit breaker open (alert storm): kept for the digest"))
        if admission.verdict == "storm":
            storm = slack_storm(tenant, lim.max_alerts, lim.window_minutes, lim.cooldown_minutes, self._cfg.base_url)
            outcome = await self._send(tenant, url, storm)
            if outcome.status == "held":
                return await held(outcome.reason, outcome.attempts)
            done.storms += 1
            done.suppressed += 1
            storm_record = store.Record(
                tenant, "slack", "storm", outcome.status, outcome.reason or f"breaker {admission.state}",
                outcome.attempts, None, feed_id, None, {"opened_by": aid},
            )
            opened = rec("suppressed", "alert storm: circuit breaker opened, kept for the digest")
            return await final(storm_record, opened)
        ids = await store.resource_ids(self._pool, tenant, anomaly)
        outcome = await self._send(tenant, url, slack_alert(anomaly, ids, self._cfg.base_url))
        if outcome.status == "held":
            return await held(outcome.reason, outcome.attempts)
        setattr(done, outcome.status, getattr(done, outcome.status) + 1)
        return await final(rec(outcome.status, outcome.reason, outcome.attempts, breaker=admission.state))

    async def _send(self, tenant: str, url: str, payload: dict[str, Any]) -> Outcome:
        async def gate() -> str | None:
            panic = await self._gov.panic(tenant)  # right before every attempt, retries included
            return panic.text() if panic else None

        return await deliver(
            lambda: post_slack(self._http, url, payload, self._cfg.timeout),
            gate=gate,
            attempts=self._cfg.attempts,
            backoff=self._cfg.backoff,
        )

    # ------------------------------------------------------------------------------------------------ digest

    async def build_digest(self, tenant: str, now: datetime) -> tuple[Digest, int, int]:
        """The digest, the feed_id it runs through and the projection generation that feed_id belongs to."""
        digest, newest, generation, _horizon = await self._build_digest(tenant, now)
        return digest, newest, generation

    async def _build_digest(self, tenant: str, now: datetime) -> tuple[Digest, int, int, dict[str, Any]]:
        """build_digest, plus how far the folds had read the log in the digest's snapshot (store.fold_horizon)."""
        followed = -1
        while True:
            # One snapshot for the cursor, the generation and the new anomalies: a swap committing half way
            # through would otherwise list the rebuilt history as new.
            async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                state = await store.digest_state(conn, tenant)
                end = await store.pending(conn, tenant, 0, 0)
                current = end.generation <= state.generation or followed == end.generation
                if current:
                    new = await store.new_anomalies(conn, tenant, state.feed_id, limit=MAX_LISTED,
                                                    beyond=state.since_horizon)
                    horizon = await store.fold_horizon(conn, tenant)
            if current:
                break
            await store.follow(self._pool, tenant, end)  # a replay since the last digest: move past its rebuild
            followed = end.generation
        running = await store.running_accounts(self._pool, tenant)
        digest = Digest(
            tenant=tenant,
            generated_at=now,
            since=state.last_sent_at,
            anomalies=new.listed,
            anomaly_total=new.total,
            by_severity=new.by_severity,
            zombies=await store.open_zombies(self._pool, tenant, now),
            accounts=running[:TOP_ACCOUNTS],
            base_url=self._cfg.base_url,
            running_hourly=round(sum(a.hourly_cost for a in running), 6),
            running_accounts=len(running),
        )
        return digest, new.newest_feed_id, state.generation, horizon

    async def send_digest(self, tenant: str) -> Outcome:
        """Send one digest now (`dd0c-cost notify digest --now`, or the daily run)."""
        now = self._clock()
        channels = await store.get_channels(self._pool, tenant)
        digest, newest, built_at, horizon = await self._build_digest(tenant, now)
        detail = {
            "anomalies": digest.anomaly_total,
            "zombies": len(digest.zombies),
            "zombie_waste_usd": digest.zombie_waste,
            "through_feed_id": newest,
        }

        async def finish(outcome: Outcome, *, delivered: bool, ran: bool = True) -> Outcome:
            r = store.Record(tenant, "email", "digest", outcome.status, outcome.reason, outcome.attempts,
                             detail=detail)
            await store.finish_digest(self._pool, r, tenant, now=now, delivered_to=newest if delivered else None,
                                      ran=ran, generation=built_at, horizon=horizon)
            return outcome

        recipients = channels.email_to if channels else ()
        if not recipients:
            return await finish(Outcome("suppressed", 0, "no email recipients configured"), delivered=False)
        try:
            flags = await self._gov.flags(tenant)
        except GovernanceUnavailable as exc:
            return await finish(Outcome("held", 0, str(exc)), delivered=False, ran=False)
        if not flags.email:
            return await finish(Outcome("suppressed", 0, "the tenant switched the email channel off"), delivered=False)
        message = email_message(digest, self._cfg.smtp.sender, recipients)

        async def gate() -> str | None:
            panic = await self._gov.panic(tenant)
            return panic.text() if panic else None

        outcome = await deliver(
            lambda: send_email(self._cfg.smtp, message, self._cfg.timeout),
            gate=gate,
            attempts=self._cfg.attempts,
            backoff=self._cfg.backoff,
        )
        return await finish(outcome, delivered=outcome.status == "sent", ran=outcome.status != "held")

    async def due_digests(self) -> dict[str, Outcome]:
        """The daily digests whose hour has come (UTC) and that have not run today."""
        now = self._clock()
        if now.hour < self._cfg.digest_hour:
            return {}
        today = now.replace(hour=self._cfg.digest_hour, minute=0, second=0, microsecond=0)
        out = {}
        for tenant in await store.notify_tenants(self._pool, self._tenant):
            state = await store.digest_state(self._pool, tenant)
            if state.last_run_at is None or state.last_run_at < today:
                out[tenant] = await self.send_digest(tenant)
        return out

    # ------------------------------------------------------------------------------------------------ daemon

    async def run_forever(self, dsn: str, stop: asyncio.Event) -> None:
        """Wake on NOTIFY dd0c_feed (the worker's commit), poll as a fallback (and to retry held messages)."""
        wake = asyncio.Event()
        lock = await connect(dsn)
        try:
            log.info("notify: waiting for the notifier lock (another notifier may be active)")
            await lock.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
            log.info("notify: active; listening on %s, polling every %.1fs", FEED_CHANNEL, self._cfg.poll_interval)
            listener = asyncio.create_task(_listen(dsn, wake), name="notify-listen")
            try:
                while not stop.is_set():
                    if lock.is_closed():
                        raise ConnectionError("the notifier lock connection was lost")
                    wake.clear()
                    try:
                        await self.run_once()
                        await self.due_digests()
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                        log.warning("notify: pass failed (%s); retrying", exc)
                    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
                    await asyncio.wait(waiters, timeout=self._cfg.poll_interval, return_when=asyncio.FIRST_COMPLETED)
                    for w in waiters:
                        w.cancel()
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
        finally:
            lock.terminate()


async def _listen(dsn: str, wake: asyncio.Event) -> None:
    backoff = 0.5
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect(dsn)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            await conn.add_listener(FEED_CHANNEL, lambda *_: wake.set())
            backoff = 0.5
            wake.set()  # whatever was committed while not listening
            await lost.wait()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("notify: cannot LISTEN on %s: %s; retrying in %.1fs", FEED_CHANNEL, exc, backoff)
        finally:
            if conn is not None and not conn.is_closed():
                conn.terminate()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 10.0)
