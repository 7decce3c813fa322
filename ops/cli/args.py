"""Argument checks shared by the sub-commands (not a command itself: it is not in COMMAND_MODULES)."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", int, float)


def positive(kind: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse `type` for numbers that must be > 0: a bad value is a usage error (exit 2), not a traceback."""

    def parse(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def loopback(host: str) -> bool:
    """True for addresses only this machine can reach (where a demo secret may be used)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
