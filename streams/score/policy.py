"""OWNED BY the scoring helper: Policy (frozen), load_policy(path), DEFAULT_POLICY."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    name: str = "default"


DEFAULT_POLICY = Policy()
