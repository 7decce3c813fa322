"""Sealing account secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with keys from DD0C_SECRET_KEY.

DD0C_SECRET_KEY holds one or more Fernet keys separated by commas, newest first: new secrets are sealed with the
first, any of them opens (MultiFernet), so a key can be rotated by prepending a new one and re-saving accounts.
Demo mode without a key derives one from a fixed label, like the demo JWT secret, and is refused elsewhere.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ops.settings import Settings
from streams.accounts.model import SecretKeyError

ENV = "DD0C_SECRET_KEY"
_DEMO_LABEL = b"dd0c-cost demo-only account secret key"
KEYGEN_HINT = "generate one with `dd0c-cost accounts keygen`"


def generate_key() -> str:
    return Fernet.generate_key().decode()


def demo_key() -> str:
    """The key demo mode uses when DD0C_SECRET_KEY is unset (public by construction: demo data only)."""
    return base64.urlsafe_b64encode(hashlib.sha256(_DEMO_LABEL).digest()).decode()


class SecretBox:
    """Seal and open secrets. Build it with `from_settings`; errors name DD0C_SECRET_KEY, never a key."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretKeyError(f"{ENV} is empty; {KEYGEN_HINT}")
        fernets = []
        for number, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError):
                raise SecretKeyError(
                    f"{ENV} key {number} of {len(keys)} is not a Fernet key (44 characters of url-safe base64 "
                    f"encoding 32 bytes); {KEYGEN_HINT}"
                ) from None
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key is None or not settings.secret_key.get_secret_value().strip():
            if settings.mode == "demo":
                return cls([demo_key()])
            raise SecretKeyError(f"{ENV} is not set: account credentials are encrypted with it; {KEYGEN_HINT}")
        return cls([k for k in settings.secret_key.get_secret_value().split(",") if k.strip()])

    def seal(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def open(self, token: bytes, *, what: str) -> bytes:
        """`what` names the secret in the error ("the credentials of account 1111... (tenant acme)")."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise SecretKeyError(
                f"cannot decrypt {what}: {ENV} is not the key it was sealed with (or the stored value is damaged); "
                f"put the old key after the new one in {ENV} to read it"
            ) from None
