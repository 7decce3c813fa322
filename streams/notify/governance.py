"""Governance in Redis: panic mode (global and per tenant), per-tenant flags, circuit breakers per tenant+channel.

Every read here can fail; any Redis error becomes `GovernanceUnavailable`, on which the notifier holds what it
was about to send (fail safe: never sent unchecked). The fold never talks to Redis.

Keys (prefix from DD0C_REDIS_PREFIX, default `dd0c`):
* `<p>:panic:global`, `<p>:panic:tenant:<t>` - JSON {actor, reason, at}; present = panic on.
* `<p>:flags:<t>` - hash: slack, email (1/0), floor (severity), quiet (HH:MM-HH:MM), tz (IANA zone).
* `<p>:breaker:<t>:<channel>` - hash: state (closed | open | half_open), opened_at, probe_at (ms);
  `<p>:breaker:<t>:<channel>:window` - sorted set of recent alerts scored by time (ms).

Breaker: while closed, more than N alerts within M minutes opens it; the alert that opened it becomes one
"alert storm" message and later ones are suppressed into the digest. After the cool-down it is half-open: the next
alert goes through as a probe; another alert within M minutes of the probe means the storm goes on (open again,
one new storm message); M quiet minutes after the probe close it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from schemas.events import Severity
from streams.notify.rules import Flags, NotifyError, QuietHours

T = TypeVar("T")
Verdict = Literal["allow", "storm", "suppress"]

_BREAKER = """
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local win = tonumber(ARGV[3])
local cool = tonumber(ARGV[4])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at'))
  if now - opened < cool then return {'suppress', 'open'} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_at', now)
  redis.call('DEL', KEYS[2])
  return {'allow', 'half_open'}
end
if state == 'half_open' then
  local probe = tonumber(redis.call('HGET', KEYS[1], 'probe_at'))
  if now - probe < win then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now)
    return {'storm', 'reopened'}
  end
  redis.call('HSET', KEYS[1], 'state', 'closed')
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - win)
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('PEXPIRE', KEYS[2], win)
if redis.call('ZCARD', KEYS[2]) > max then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now)
  redis.call('DEL', KEYS[2])
  return {'storm', 'opened'}
end
return {'allow', 'closed'}
"""


class GovernanceUnavailable(NotifyError):
    """Redis could not be asked: whatever needed the answer is held, not sent."""


@dataclass(frozen=True, slots=True)
class Panic:
    scope: str  # "global" or the tenant id
    actor: str
    reason: str
    at: datetime

    def text(self) -> str:
        where = "global" if self.scope == "global" else f"tenant {self.scope}"
        return f"panic mode ({where}) set by {self.actor} at {self.at:%Y-%m-%d %H:%M:%S} UTC: {self.reason}"


@dataclass(frozen=True, slots=True)
class BreakerLimits:
    max_alerts: int = 10
    window_minutes: float = 5.0
    cooldown_minutes: float = 15.0


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    state: str  # the breaker state that decided it: closed | open | half_open | opened | reopened


class Governance:
    """One Redis client and the key layout; cheap to create, `aclose()` when done."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "dd0c",
        limits: BreakerLimits | None = None,
        default_floor: Severity = Severity.HIGH,
    ) -> None:
        self._r = redis
        self._p = prefix
        self.limits = limits or BreakerLimits()
        self.default_floor = default_floor
        self._breaker = redis.register_script(_BREAKER)

    @classmethod
    def connect(
        cls,
        url: str | None,
        *,
        timeout: float = 1.0,
        prefix: str = "dd0c",
        limits: BreakerLimits | None = None,
        default_floor: Severity = Severity.HIGH,
    ) -> Governance:
        if not url:
            raise GovernanceUnavailable("REDIS_URL is not set: panic mode, flags and breakers need Redis")
        # One quick try per call: a Redis that is down must hold notifications now, not after a retry ladder.
        redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        return cls(redis, prefix=prefix, limits=limits, default_floor=default_floor)

    @classmethod
    def from_settings(cls, settings: Any, url: str | None = None) -> Governance:
        """From ops.settings.Settings: REDIS_URL, DD0C_REDIS_PREFIX/TIMEOUT, the breaker limits, the default floor."""
        limits = BreakerLimits(
            settings.breaker_max_alerts, settings.breaker_window_minutes, settings.breaker_cooldown_minutes
        )
        return cls.connect(
            url if url is not None else settings.redis_url,
            timeout=settings.redis_timeout,
            prefix=settings.redis_prefix,
            limits=limits,
            default_floor=Severity.parse(settings.notify_severity_floor),
        )

    async def aclose(self) -> None:
        await self._r.aclose()

    async def _call(self, op: Awaitable[T]) -> T:
        try:
            return await op
        except (RedisError, OSError, TimeoutError) as exc:
            raise GovernanceUnavailable(f"Redis unavailable: {type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------------------------------------------ panic

    def _panic_key(self, tenant: str | None) -> str:
        return f"{self._p}:panic:global" if tenant is None else f"{self._p}:panic:tenant:{tenant}"

    async def set_panic(self, tenant: str | None, actor: str, reason: str, at: datetime | None = None) -> None:
        when = (at or datetime.now(UTC)).astimezone(UTC)
        value = orjson.dumps({"actor": actor, "reason": reason, "at": when.isoformat()})
        await self._call(self._r.set(self._panic_key(tenant), value))

    async def clear_panic(self, tenant: str | None) -> bool:
        """True when panic was on (for that scope) and is now off."""
        return bool(await self._call(self._r.delete(self._panic_key(tenant))))

    async def panic_status(self, tenant: str | None) -> dict[str, Panic | None]:
        """{"global": ..., "tenant": ...} (tenant None: only global)."""
        keys = [self._panic_key(None)] + ([self._panic_key(tenant)] if tenant is not None else [])
        values = await self._call(self._r.mget(keys))
        scopes = ["global"] + ([tenant] if tenant is not None else [])
        found = {s: _panic(s, v) for s, v in zip(scopes, values, strict=True)}
        return {"global": found["global"], "tenant": found.get(tenant) if tenant is not None else None}

    async def tenant_panics(self) -> dict[str, Panic]:
        """Every tenant whose own switch is on (for an operator looking at the global view)."""
        head = f"{self._p}:panic:tenant:"

        async def scan() -> list[str]:
            return sorted([k async for k in self._r.scan_iter(match=f"{head}*", count=500)])

        keys = await self._call(scan())  # Redis down: GovernanceUnavailable, as every other question
        if not keys:
            return {}
        values = await self._call(self._r.mget(keys))
        found = {k[len(head):]: _panic(k[len(head):], v) for k, v in zip(keys, values, strict=True)}
        return {t: p for t, p in found.items() if p is not None}

    async def panic(self, tenant: str) -> Panic | None:
        """The panic that silences this tenant now (global first), or None. Checked right before every send, and
        the question any outbound action added later (remediation) must ask too."""
        status = await self.panic_status(tenant)
        return status["global"] or status["tenant"]

    # ------------------------------------------------------------------------------------------------ flags

    async def flags(self, tenant: str) -> Flags:
        raw: dict[str, str] = await self._call(self._r.hgetall(f"{self._p}:flags:{tenant}"))  # type: ignore[misc]
        return flags_from_hash(raw, self.default_floor)

    async def set_flags(self, tenant: str, flags: Flags) -> None:
        key = f"{self._p}:flags:{tenant}"
        mapping = flags_to_hash(flags)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            await self._call(pipe.execute())

    # ------------------------------------------------------------------------------------------------ breaker

    async def admit(self, tenant: str, channel: str, now: datetime) -> Admission:
        """Count one alert against the tenant+channel breaker and say whether it may go out."""
        key = f"{self._p}:breaker:{tenant}:{channel}"
        lim = self.limits
        args = [
            int(now.timestamp() * 1000),
            lim.max_alerts,
            int(lim.window_minutes * 60_000),
            int(lim.cooldown_minutes * 60_000),
            uuid.uuid4().hex,
        ]
        verdict, state = await self._call(self._breaker(keys=[key, f"{key}:window"], args=args))
        return Admission(verdict, state)

    async def breaker_state(self, tenant: str, channel: str) -> str:
        state = await self._call(self._r.hget(f"{self._p}:breaker:{tenant}:{channel}", "state"))  # type: ignore[misc]
        return str(state or "closed")

    async def reset_breaker(self, tenant: str, channel: str) -> None:
        key = f"{self._p}:breaker:{tenant}:{channel}"
        await self._call(self._r.delete(key, f"{key}:window"))


def _panic(scope: str, value: str | None) -> Panic | None:
    if value is None:
        return None
    data: dict[str, Any] = orjson.loads(value)
    return Panic(scope, str(data.get("actor", "?")), str(data.get("reason", "")), datetime.fromisoformat(data["at"]))


def flags_to_hash(flags: Flags) -> dict[str, str]:
    out = {"slack": "1" if flags.slack else "0", "email": "1" if flags.email else "0", "floor": flags.severity_floor}
    if flags.quiet is not None:
        out |= {"quiet": f"{flags.quiet.start:%H:%M}-{flags.quiet.end:%H:%M}", "tz": flags.quiet.tz}
    return {k: str(v) for k, v in out.items()}


def flags_from_hash(raw: dict[str, str], default_floor: Severity) -> Flags:
    quiet = QuietHours.parse(raw["quiet"], raw.get("tz") or "UTC") if raw.get("quiet") else None
    floor = Severity.parse(raw["floor"]) if raw.get("floor") else default_floor
    return Flags(slack=raw.get("slack", "1") == "1", email=raw.get("email", "1") == "1", severity_floor=floor,
                 quiet=quiet)
