"""Delivery over the wire: Slack incoming webhooks (HTTP) and SMTP, with bounded retries and backoff.

`deliver` asks the gate (panic mode, in Redis) right before every attempt, so a panic set while a message is being
retried stops it too. Error texts never carry the webhook URL: it is a secret, and they end up in the database.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

import httpx

from streams.notify.governance import GovernanceUnavailable

Status = Literal["sent", "failed", "suppressed", "held"]


class SendError(Exception):
    """One failed attempt; `retryable` says whether another attempt may succeed (5xx, 429, timeouts, refused)."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    attempts: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    user: str | None = None
    password: str | None = None
    starttls: bool = False


async def post_slack(client: httpx.AsyncClient, url: str, payload: dict[str, Any], seconds: float) -> None:
    try:
        response = await client.post(url, json=payload, timeout=seconds)
    except httpx.TimeoutException:
        raise SendError(f"Slack webhook timed out after {seconds:g}s", retryable=True) from None
    except httpx.HTTPError as exc:
        raise SendError(f"Slack webhook unreachable: {type(exc).__name__}", retryable=True) from None
    if 200 <= response.status_code < 300:
        return
    body = response.text[:200].strip()
    # Slack answers 4xx for a bad payload or a revoked webhook (invalid_payload, no_service): retrying cannot help.
    retryable = response.status_code >= 500 or response.status_code == 429
    raise SendError(f"Slack webhook answered HTTP {response.status_code}: {body}", retryable=retryable)


def _send_smtp(config: SmtpConfig, message: EmailMessage, timeout: float) -> None:
    with smtplib.SMTP(config.host, config.port, timeout=timeout) as smtp:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.user:
            smtp.login(config.user, config.password or "")
        refused = smtp.send_message(message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)


async def send_email(config: SmtpConfig, message: EmailMessage, seconds: float) -> None:
    try:
        await asyncio.to_thread(_send_smtp, config, message, seconds)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _ in exc.recipients.values()})
        raise SendError(f"SMTP refused every recipient ({codes})", retryable=any(c < 500 for c in codes)) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise SendError(f"SMTP refused: {exc.smtp_code} {text}", retryable=exc.smtp_code < 500) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"SMTP server {config.host}:{config.port} unusable: {exc}", retryable=True) from None


Gate = Callable[[], Awaitable[str | None]]


async def deliver(send: Callable[[], Awaitable[None]], *, gate: Gate, attempts: int, backoff: float) -> Outcome:
    """Try `send` up to `attempts` times (backoff, 2x backoff, ...). Before each try `gate()` says why not to send
    (panic) or raises GovernanceUnavailable (Redis down: held)."""
    for attempt in range(1, attempts + 1):
        try:
            blocked = await gate()
        except GovernanceUnavailable as exc:
            return Outcome("held", attempt - 1, str(exc))
        if blocked:
            return Outcome("suppressed", attempt - 1, blocked)
        try:
            await send()
        except SendError as exc:
            if not exc.retryable or attempt == attempts:
                return Outcome("failed", attempt, exc.reason)
            await asyncio.sleep(backoff * 2 ** (attempt - 1))
        else:
            return Outcome("sent", attempt)
    raise AssertionError("unreachable: attempts >= 1")
