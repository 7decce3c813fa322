"""The daily email digest (pure): the same content as plain text and as HTML, and the multipart message.

Sections: new anomalies since the last digest (with what Slack did with each), open zombies with their total
monthly waste, and the top accounts by what runs now. Monthly figures are $/hour x 730 (AWS's month).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from schemas.events import Severity
from streams.notify.messages import anomaly_link, cents, expected_vs_actual, hourly

HOURS_PER_MONTH = 730
MAX_LISTED = 50  # anomalies listed one by one; the counts cover all of them
TOP_ACCOUNTS = 5  # accounts listed by what they burn now (the total covers every account)


@dataclass(frozen=True, slots=True)
class DigestAnomaly:
    id: str
    severity: str
    account_id: str
    resource: str
    hourly_cost: float | None
    expected_hourly_cost: float | None
    event_time: datetime
    slack: str = ""  # what the Slack channel did with it: sent, suppressed (why), digest (why), ...


@dataclass(frozen=True, slots=True)
class DigestZombie:
    account_id: str
    resource_id: str
    resource_type: str
    check: str
    monthly_waste_usd: float | None


@dataclass(frozen=True, slots=True)
class DigestAccount:
    account_id: str
    running_resources: int
    hourly_cost: float


@dataclass(frozen=True, slots=True)
class Digest:
    tenant: str
    generated_at: datetime
    since: datetime | None  # the previous digest (None: the first one)
    anomalies: Sequence[DigestAnomaly] = ()
    anomaly_total: int = 0  # may exceed len(anomalies) (only MAX_LISTED are listed)
    by_severity: dict[str, int] = field(default_factory=dict)
    zombies: Sequence[DigestZombie] = ()
    accounts: Sequence[DigestAccount] = ()  # the costliest few (TOP_ACCOUNTS)
    base_url: str = "http://127.0.0.1:8080"
    running_hourly: float | None = None  # every account's running resources, $/h (None: the listed ones')
    running_accounts: int | None = None  # how many accounts run something (None: the listed ones)

    @property
    def burn(self) -> tuple[float, int]:
        """($/h of everything running, accounts running something) - all of them, not only the listed ones."""
        listed = sum(a.hourly_cost for a in self.accounts)
        return (listed if self.running_hourly is None else self.running_hourly,
                len(self.accounts) if self.running_accounts is None else self.running_accounts)

    @property
    def zombie_waste(self) -> float:
        """Total monthly waste of the open zombies whose price is known. Not rounded to cents here: `money` rounds
        half-up once, so $102.925 reads $102.93 as in the API and the CLI (a float round() would give $102.92)."""
        return round(sum(z.monthly_waste_usd or 0.0 for z in self.zombies), 6)

    @property
    def unpriced_zombies(self) -> int:
        return sum(1 for z in self.zombies if z.monthly_waste_usd is None)


def money(value: float) -> str:
    return cents(value)


def subject(d: Digest) -> str:
    parts = [f"{d.anomaly_total} new anomal{'y' if d.anomaly_total == 1 else 'ies'}"]
    # what a person triages from the inbox: the urgent ones, not a total swollen by info and low
    urgent = [f"{d.by_severity[s]} {s}" for s in ("critical", "high") if d.by_severity.get(s)]
    if urgent:
        parts[0] += f" ({', '.join(urgent)})"
    if d.zombies:
        parts.append(f"{len(d.zombies)} open zombies wasting {money(d.zombie_waste)}/month")
    return f"dd0c/cost digest for {d.tenant}: " + ", ".join(parts)


def _counts(d: Digest) -> str:
    ordered = [s.value for s in reversed(Severity) if d.by_severity.get(s.value)]
    return ", ".join(f"{d.by_severity[s]} {s}" for s in ordered) or "none"


def render_text(d: Digest) -> str:
    since = f"since {d.since:%Y-%m-%d %H:%M} UTC" if d.since else "(first digest)"
    lines = [
        f"dd0c/cost daily digest - tenant {d.tenant} - {d.generated_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"NEW ANOMALIES {since}: {d.anomaly_total} ({_counts(d)})",
    ]
    for a in d.anomalies:
        lines.append(
            f"  [{a.severity.upper():8}] {a.account_id}  {a.resource}  "
            f"{expected_vs_actual(a.expected_hourly_cost, a.hourly_cost)}  {a.event_time:%Y-%m-%d %H:%M} UTC"
        )
        lines.append(f"             slack: {a.slack or '-'}  {anomaly_link(d.base_url, a.id)}")
    if d.anomaly_total > len(d.anomalies):
        lines.append(f"  ... and {d.anomaly_total - len(d.anomalies)} more on the dashboard: {d.base_url.rstrip('/')}/")
    lines += ["", f"OPEN ZOMBIES: {len(d.zombies)}, wasting {money(d.zombie_waste)}/month"]
    if d.unpriced_zombies:
        lines.append(f"  ({d.unpriced_zombies} of them unpriced, not in the total)")
    for z in d.zombies:
        waste = "unpriced" if z.monthly_waste_usd is None else f"{money(z.monthly_waste_usd)}/month"
        lines.append(f"  {z.account_id}  {z.resource_type} {z.resource_id}  {waste}  ({z.check})")
    total, running = d.burn
    lines += ["", f"RUNNING NOW: {hourly(round(total, 6))} ({money(total * HOURS_PER_MONTH)}/month) in {running}"
              f" account{'s' if running != 1 else ''}; the costliest:"]
    for acc in d.accounts:
        lines.append(
            f"  {acc.account_id}  {hourly(acc.hourly_cost)}  {money(acc.hourly_cost * HOURS_PER_MONTH)}/month"
            f"  {acc.running_resources} running"
        )
    lines += ["", f"Dashboard: {d.base_url.rstrip('/')}/"]
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    return f"<td>{html.escape(value)}</td>"


def render_html(d: Digest) -> str:
    e = html.escape
    since = f"since {d.since:%Y-%m-%d %H:%M} UTC" if d.since else "(first digest)"
    rows = "".join(
        "<tr>"
        + _cell(a.severity.upper())
        + _cell(a.account_id)
        + _cell(a.resource)
        + _cell(expected_vs_actual(a.expected_hourly_cost, a.hourly_cost))
        + _cell(f"{a.event_time:%Y-%m-%d %H:%M} UTC")
        + _cell(a.slack or "-")
        + f'<td><a href="{e(anomaly_link(d.base_url, a.id))}">detail</a></td></tr>'
        for a in d.anomalies
    )
    more = (
        f"<p>... and {d.anomaly_total - len(d.anomalies)} more.</p>" if d.anomaly_total > len(d.anomalies) else ""
    )
    zombies = "".join(
        "<tr>"
        + _cell(z.account_id)
        + _cell(f"{z.resource_type} {z.resource_id}")
        + _cell("unpriced" if z.monthly_waste_usd is None else f"{money(z.monthly_waste_usd)}/month")
        + _cell(z.check)
        + "</tr>"
        for z in d.zombies
    )
    total, running = d.burn
    accounts = "".join(
        "<tr>"
        + _cell(a.account_id)
        + _cell(hourly(a.hourly_cost))
        + _cell(f"{money(a.hourly_cost * HOURS_PER_MONTH)}/month")
        + _cell(str(a.running_resources))
        + "</tr>"
        for a in d.accounts
    )
    return (
        "<!doctype html><html><body style=\"font-family: sans-serif\">"
        f"<h2>dd0c/cost daily digest - {e(d.tenant)}</h2>"
        f"<p>{d.generated_at:%Y-%m-%d %H:%M} UTC</p>"
        f"<h3>New anomalies {e(since)}: {d.anomaly_total} ({e(_counts(d))})</h3>"
        "<table border=\"1\" cellpadding=\"4\"><tr><th>Severity</th><th>Account</th><th>Resource</th>"
        f"<th>Cost</th><th>When</th><th>Slack</th><th></th></tr>{rows}</table>{more}"
        f"<h3>Open zombies: {len(d.zombies)}, wasting {money(d.zombie_waste)}/month</h3>"
        "<table border=\"1\" cellpadding=\"4\"><tr><th>Account</th><th>Resource</th><th>Waste</th>"
        f"<th>Check</th></tr>{zombies}</table>"
        f"<h3>Running now: {e(hourly(round(total, 6)))} ({money(total * HOURS_PER_MONTH)}/month) in {running}"
        f" account{'s' if running != 1 else ''}; the costliest:</h3>"
        "<table border=\"1\" cellpadding=\"4\"><tr><th>Account</th><th>Now</th><th>Month</th><th>Running</th>"
        f"</tr>{accounts}</table>"
        f'<p><a href="{e(d.base_url.rstrip("/") + "/")}">Open the dashboard</a></p>'
        "</body></html>"
    )


def email_message(d: Digest, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """multipart/alternative: text/plain first, text/html second (mail clients show the last part they can)."""
    msg = EmailMessage()
    msg["Subject"] = subject(d)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(d.generated_at)
    msg["Message-ID"] = make_msgid(domain="dd0c-cost")
    msg.set_content(render_text(d))
    msg.add_alternative(render_html(d), subtype="html")
    return msg
