"""Novelty signals: who, where and what this (account, resource_type) has not seen before.

Judged against the baseline as it was before the event. The first-ever resource type subsumes the others
(everything is new then), so it is reported alone with the actor, region and family in its text and data.
"""

from __future__ import annotations

from schemas.events import Baseline, CostEvent, Reason
from streams.score.policy import Policy
from streams.score.text import actor_label, what


def novelty(baseline: Baseline | None, event: CostEvent, policy: Policy) -> list[Reason]:
    out: list[Reason] = []
    rtype = event.resource_type
    who = actor_label(event.actor)
    if baseline is None or baseline.events_seen == 0:
        if policy.novelty_first_resource_type:
            out.append(
                Reason(
                    "first_resource_type",
                    f"first {rtype} ever seen in this account ({what(event)} in {event.region} by {who})",
                    {
                        "resource_type": rtype,
                        "region": event.region,
                        "family": event.family,
                        "instance_type": event.instance_type,
                        "actor": event.actor.key,
                    },
                )
            )
    else:
        counts_as_new_actor = policy.novelty_automation_actor if event.actor.automation else policy.novelty_new_actor
        if counts_as_new_actor and event.actor.key not in baseline.actors:
            out.append(
                Reason(
                    "new_actor",
                    f"first {rtype} created by {who} in this account",
                    {
                        "actor": event.actor.key,
                        "actor_kind": event.actor.kind,
                        "automation": event.actor.automation,
                        "known_actors": len(baseline.actors),
                    },
                )
            )
        if policy.novelty_new_region and event.region not in baseline.regions:
            out.append(
                Reason(
                    "new_region",
                    f"first {rtype} in {event.region} in this account ({what(event)} by {who})",
                    {"region": event.region, "known_regions": sorted(baseline.regions)},
                )
            )
        if policy.novelty_new_family and event.family and event.family not in baseline.families:
            noun = event.unit or "resource"
            out.append(
                Reason(
                    "new_family",
                    f"first {event.family} {noun} in this account ({what(event)} in {event.region} by {who})",
                    {
                        "family": event.family,
                        "instance_type": event.instance_type,
                        "known_families": sorted(baseline.families),
                    },
                )
            )
    if policy.novelty_root_actor and event.actor.kind == "root":
        out.append(
            Reason(
                "root_actor",
                f"created by the account root user ({what(event)} in {event.region}), not an IAM identity",
                {"actor": event.actor.key},
            )
        )
    return out
