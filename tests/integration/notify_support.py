"""Real peers for the notification tests (no tests here): a local HTTP server standing in for Slack that records
every post and answers as scripted (status codes, or hang), and an aiosmtpd server on loopback."""

from __future__ import annotations

import asyncio
import email
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import orjson
from aiosmtpd.controller import Controller

from streams.notify.channels import SmtpConfig
from streams.notify.governance import BreakerLimits, Governance
from streams.notify.service import NotifierConfig

HANG = -1  # a scripted "status" that never answers


@dataclass
class Post:
    path: str
    body: dict[str, Any]
    status: int


@dataclass
class SlackServer:
    """POST /<anything>: records the JSON body; answers the next scripted status for that path (default 200)."""

    script: dict[str, list[int]] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    port: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def to(self, path: str) -> list[Post]:
        return [p for p in self.posts if p.path == "/" + path.lstrip("/")]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                _method, path, _ = request_line.split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines if h)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                queue = self.script.get(path, [])
                status = queue.pop(0) if queue else 200
                self.posts.append(Post(path, orjson.loads(body) if body else {}, status))
                if status == HANG:
                    await asyncio.Event().wait()  # until the server is closed
                text = b"ok" if status == 200 else b"internal_error"
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {len(text)}\r\n\r\n".encode()
                    + text
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


@asynccontextmanager
async def slack_server(script: dict[str, list[int]] | None = None) -> AsyncIterator[SlackServer]:
    slack = SlackServer(script={f"/{k.lstrip('/')}": list(v) for k, v in (script or {}).items()})
    server = await asyncio.start_server(slack._handle, "127.0.0.1", 0)
    slack.port = server.sockets[0].getsockname()[1]
    try:
        yield slack
    finally:
        server.close()
        for task in list(slack._tasks):
            task.cancel()
        await asyncio.gather(*slack._tasks, return_exceptions=True)


class _Inbox:
    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.refuse:
            return "554 5.7.1 Message refused by policy"
        msg = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def smtp_server(*, refuse: bool = False) -> Iterator[tuple[_Inbox, SmtpConfig]]:
    inbox = _Inbox(refuse)
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpConfig("127.0.0.1", port, "dd0c-cost@test.invalid")
    finally:
        controller.stop()


def notifier_config(smtp: SmtpConfig | None = None, **overrides: Any) -> NotifierConfig:
    base = {
        "base_url": "https://dd0c.test.invalid",
        "smtp": smtp or SmtpConfig("127.0.0.1", free_port(), "dd0c-cost@test.invalid"),
        "timeout": 1.0,
        "attempts": 3,
        "backoff": 0.01,
        "poll_interval": 0.2,
        "digest_hour": 8,
    }
    return NotifierConfig(**(base | overrides))


def governance(redis_url: str, *, max_alerts: int = 10, window: float = 5.0, cooldown: float = 15.0) -> Governance:
    """A Governance on the real Redis, under a random key prefix so concurrent tests never share panic or
    breaker state."""
    return Governance.connect(
        redis_url,
        prefix=f"dd0c-test-{uuid.uuid4().hex[:10]}",
        limits=BreakerLimits(max_alerts, window, cooldown),
        timeout=1.0,
    )


def closed_redis_url() -> str:
    """A Redis URL nothing listens on (a port just released): every governance call fails."""
    return f"redis://127.0.0.1:{free_port()}/0"
