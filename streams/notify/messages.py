"""Slack messages as Block Kit JSON (pure): one anomaly alert, and the "alert storm" notice of an open breaker.

Input is the API's anomaly shape (projections.queries.anomaly_item) plus the resource ids the notifier looked
up, so Slack shows the same figures as `GET /v1/anomalies/{id}`, and links to the dashboard opened on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from schemas.events import Severity
from streams.score.text import usd

Json = dict[str, Any]

_EMOJI = {
    Severity.CRITICAL: ":rotating_light:",
    Severity.HIGH: ":warning:",
    Severity.MEDIUM: ":large_orange_diamond:",
    Severity.LOW: ":small_blue_diamond:",
    Severity.INFO: ":information_source:",
}
_MAX_REASONS = 8  # Slack caps a section's text at 3000 characters; a person reads the first few anyway
_MAX_TEXT = 2900


def cents(value: float) -> str:
    """`$1,234.57`: half-up from the shortest decimal form of the float, so $0.045 reads $0.05 as a person
    rounding by hand expects (binary 0.045 is a hair below it, and plain formatting would print $0.04)."""
    rounded = Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"${rounded:,.2f}"


def hourly(value: float | None) -> str:
    """Dollars per hour, to the cent, as people read them; an unknown price is said, never shown as $0, and
    neither is a real cost under half a cent ($0.0014/h for a small volume, not $0.00/h)."""
    if value is None:
        return "unpriced"
    if 0 < abs(value) < 0.005:
        return f"{usd(value)}/h"
    return f"{cents(value)}/h"


def expected_vs_actual(expected: float | None, actual: float | None) -> str:
    """`$0.10/h expected vs $21.96/h` (a first-ever resource type has no expectation yet). When cents would
    show two different amounts as one (`$0.01/h expected vs $0.01/h`), both get up to four decimals."""
    if expected is None:
        return f"no baseline yet vs {hourly(actual)}"
    if actual is not None and expected != actual and cents(expected) == cents(actual):
        return f"{usd(expected)}/h expected vs {usd(actual)}/h"
    return f"{hourly(expected)} expected vs {hourly(actual)}"


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters (links, mentions): a resource name must not."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def anomaly_link(base_url: str, anomaly_id: str) -> str:
    """The dashboard with the anomaly opened (a browser page; the JSON is at /v1/anomalies/<id> with a token)."""
    return f"{base_url.rstrip('/')}/#anomaly={anomaly_id}"


def resource_text(anomaly: Mapping[str, Any], resource_ids: Sequence[str]) -> str:
    """`ec2_instance p4d.24xlarge i-0abc… in us-east-1`: what it is, which one, where."""
    parts = [str(anomaly["resource_type"])]
    if anomaly.get("instance_type"):
        parts.append(str(anomaly["instance_type"]))
    if resource_ids:
        shown = list(resource_ids[:3])
        more = len(resource_ids) - len(shown)
        parts.append(", ".join(shown) + (f" (+{more} more)" if more > 0 else ""))
    if anomaly.get("region"):
        parts.append(f"in {anomaly['region']}")
    return " ".join(parts)


def slack_alert(anomaly: Mapping[str, Any], resource_ids: Sequence[str], base_url: str) -> Json:
    severity = Severity.parse(str(anomaly["severity"]))
    actual, expected = anomaly.get("hourly_cost"), anomaly.get("expected_hourly_cost")
    account = str(anomaly["account_id"])
    resource = resource_text(anomaly, resource_ids)
    link = anomaly_link(base_url, str(anomaly["id"]))
    reasons = [f"• {escape(str(r.get('text') or r.get('signal')))}" for r in anomaly.get("reasons") or ()]
    if len(reasons) > _MAX_REASONS:
        reasons = [*reasons[:_MAX_REASONS], f"• … and {len(reasons) - _MAX_REASONS} more"]
    when = anomaly.get("event_time")
    when_text = when.strftime("%Y-%m-%d %H:%M:%S UTC") if hasattr(when, "strftime") else str(when)
    headline = f"{severity.value.upper()} cost anomaly: {hourly(actual)} in account {account}"
    fields = [
        ("Severity", severity.value.upper()),
        ("Account", account),
        ("Resource", escape(resource)),
        ("Cost", expected_vs_actual(expected, actual)),
        ("Started by", escape(str(anomaly.get("actor") or "unknown"))),
        ("When", when_text),
    ]
    blocks: list[Json] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{_EMOJI[severity]} {headline}"[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
    ]
    if reasons:
        text = "*Why*\n" + "\n".join(reasons)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:_MAX_TEXT]}})
    blocks += [
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open in dd0c/cost"}, "url": link}
            ],
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"anomaly {anomaly['id']} · events {', '.join(anomaly.get('event_ids') or ()) or '-'}"
                    f" · policy {anomaly.get('policy') or 'default'}",
                }
            ],
        },
    ]
    # `text` is what notifications and screen readers show; Slack wants it beside the blocks.
    fallback = f"{headline}: {resource}, {expected_vs_actual(expected, actual)}. {link}"
    return {"text": fallback, "blocks": blocks}


def slack_storm(tenant: str, alerts: int, window_minutes: float, cooldown_minutes: float, base_url: str) -> Json:
    """The one message an opening breaker sends instead of the alerts behind it."""
    headline = f":cyclone: Alert storm: more than {alerts} alerts in {window_minutes:g} minutes"
    body = (
        f"Tenant *{escape(tenant)}* raised more than {alerts} Slack alerts in {window_minutes:g} minutes. "
        f"Further alerts are paused for {cooldown_minutes:g} minutes and roll into the next email digest; "
        "every one of them is in the API."
    )
    link = f"{base_url.rstrip('/')}/v1/anomalies"
    return {
        "text": f"Alert storm for tenant {tenant}: further alerts go to the digest. {link}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "All anomalies"}, "url": link}
                ],
            },
        ],
    }
