"""AWS for the zombie-hunter tests: moto in server mode over HTTP, a fresh account per test, and a fault proxy.

* moto (ThreadedMotoServer on a free loopback port) is shared by the module; each test assumes a role in a new
  random account through moto's STS, so tests never see each other's resources and nothing needs a reset (moto's
  state is process-wide and other suites use it too).
* moto's built-in AMIs are switched off for those accounts (MOTO_EC2_LOAD_DEFAULT_AMIS=false, read when an
  account's EC2 backend is first created): they come with ~1,300 snapshots of deleted volumes that moto lists even
  for OwnerIds=["self"], which AWS never would.
* `FaultProxy` is a real HTTP server between boto3 and moto. It forwards every request, except the ones a rule
  matches (by signing region, service, action and access key id), which it answers with the AWS error document
  itself: UnauthorizedOperation for an SCP-denied region, RequestLimitExceeded for throttling, RequestExpired for
  credentials that expire (from the first request on, or after N requests: mid-scan). It counts what it saw.
"""

from __future__ import annotations

import http.client
import random
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from streams.accounts.session import EndpointSession


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class Rule:
    """Answer matching requests with an AWS error (`times` = how many; None = always)."""

    region: str | None
    service: str | None
    action: str | None
    code: str
    status: int
    times: int | None = None
    hits: int = 0
    access_key: str | None = None  # only requests signed with this access key id
    after: int = 0  # let this many matching requests through first (credentials that expire mid-scan)
    passed: int = 0

    def matches(self, region: str, service: str, action: str, access_key: str = "") -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return all(want is None or want == got for want, got in
                   ((self.region, region), (self.service, service), (self.action, action),
                    (self.access_key, access_key)))


@dataclass
class FaultProxy:
    target: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (region, service, action) of every request
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def deny(self, region: str, service: str = "ec2", code: str = "UnauthorizedOperation") -> None:
        self.rules.append(Rule(region, service, None, code, 403))

    def throttle(self, region: str, action: str, times: int = 1) -> Rule:
        rule = Rule(region, "ec2", action, "RequestLimitExceeded", 503, times)
        self.rules.append(rule)
        return rule

    def expire(self, access_key: str, after: int = 0, code: str = "RequestExpired") -> Rule:
        """The credentials of `access_key` expire after `after` more requests: every later one is refused, in
        every region and service, as EC2 refuses a request signed with an expired session token."""
        rule = Rule(None, None, None, code, 400, access_key=access_key, after=after)
        self.rules.append(rule)
        return rule

    def start(self) -> str:
        proxy = self
        target = urllib.parse.urlsplit(self.target)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                region, service, action = _describe(self.headers, self.path, body)
                key = _access_key(self.headers)
                with _LOCK:
                    proxy.seen.append((region, service, action))
                    rule = next((r for r in proxy.rules if r.matches(region, service, action, key)), None)
                    if rule is not None and rule.passed < rule.after:
                        rule.passed += 1
                        rule = None
                    if rule is not None:
                        rule.hits += 1
                if rule is not None:
                    payload = _ec2_error(rule.code).encode()
                    self.send_response(rule.status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_POST = do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


_LOCK = threading.Lock()


def _describe(headers: Any, path: str, body: bytes) -> tuple[str, str, str]:
    """(region, service, action) of a signed AWS request: the SigV4 scope names the first two."""
    auth = headers.get("Authorization") or ""
    region = service = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 5:
            region, service = scope[2], scope[3]
    action = ""
    target = headers.get("X-Amz-Target")
    if target:
        action = target.rsplit(".", 1)[-1]
    elif "/operation/" in path:
        action = path.rsplit("/operation/", 1)[1].split("?")[0]
    else:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = (form.get("Action") or [""])[0]
    return region, service, action


def _access_key(headers: Any) -> str:
    """The access key id a SigV4 request was signed with (Credential=<key>/<date>/<region>/<service>/...)."""
    auth = headers.get("Authorization") or ""
    return auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else ""


def _ec2_error(code: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>' + code + "</Code><Message>"
        + f"{code} (injected by the test's fault proxy)</Message></Error></Errors>"
        "<RequestID>dd0c-fault-proxy</RequestID></Response>"
    )


@pytest.fixture
def proxy(moto_url: str) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_url)
    p.start()
    try:
        yield p
    finally:
        p.stop()


@dataclass(frozen=True)
class Aws:
    """One fresh moto account: its id, credentials (an assumed role) and session factories."""

    account_id: str
    credentials: dict[str, str]
    moto_url: str

    def session(self, endpoint: str | None = None, region: str = "us-east-1") -> EndpointSession:
        return EndpointSession(region_name=region, endpoint_url=endpoint or self.moto_url, **self.credentials)

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return self.session(region=region).client(service)


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/dd0c-test-aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/dd0c-test-aws-credentials")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    account = str(random.randint(2 * 10**11, 9 * 10**11))
    sts = boto3.client("sts", endpoint_url=moto_url, region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/dd0c-cost-reader",
                            RoleSessionName="dd0c-zombie-test")["Credentials"]
    return Aws(
        account,
        {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
         "aws_session_token": creds["SessionToken"]},
        moto_url,
    )
