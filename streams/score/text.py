"""Words for reasons: dollar amounts, z values and names a person reads without opening the code."""

from __future__ import annotations

from schemas.events import Actor, CostEvent


def usd(amount: float) -> str:
    """$1,234.50 for large amounts; up to four decimals below a dollar ($0.096, $0.0104, $0.10)."""
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    text = f"{amount:.4f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{amount:.2f}"
    return f"${text}"


def z_text(z: float) -> str:
    return f"{z:.0f}" if abs(z) >= 100 else f"{z:.1f}"


def actor_label(actor: Actor) -> str:
    """alice, ci-role (session deploy-42), autoscaling.amazonaws.com, root: the last part of the canonical key."""
    if actor.kind == "root":
        return "the root user"
    key = actor.key
    if key.startswith("service:"):
        name = key.removeprefix("service:")
    else:
        name = key.rsplit("/", 1)[-1] if "/" in key else key
    return f"{name} (session {actor.detail})" if actor.detail else name


def what(event: CostEvent) -> str:
    """1 x p4d.24xlarge, 3 x m5.large, 16000 GiB ebs_volume, nat_gateway."""
    if event.instance_type:
        count = f"{event.quantity:g}"
        return f"{count} x {event.instance_type}"
    if event.unit and event.unit not in ("instance", event.resource_type):
        return f"{event.quantity:g} {event.unit} {event.resource_type}"
    return event.resource_type
