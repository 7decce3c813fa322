"""The throwaway PKI of `python -m ops.devpki`: private keys for their owner only, whatever the umask."""

from __future__ import annotations

import stat
from pathlib import Path

from ops.devpki import make_pki


def test_private_keys_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    keys = (pki.server_key, pki.client_key, pki.rogue_key)
    certs = (pki.ca, pki.server_cert, pki.client_cert, pki.rogue_cert)
    assert {stat.S_IMODE(Path(k).stat().st_mode) for k in keys} == {0o600}
    assert all(Path(c).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----") for c in certs)  # umask decides
    assert all(Path(k).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----") for k in keys)
