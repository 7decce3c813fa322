"""The throwaway PKI of `python -m ops.devpki`: private keys for their owner only, whatever the umask; --help
writes nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ops.devpki import main, make_pki


def test_private_keys_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    keys = (pki.server_key, pki.client_key, pki.rogue_key)
    certs = (pki.ca, pki.server_cert, pki.client_cert, pki.rogue_cert)
    assert {stat.S_IMODE(Path(k).stat().st_mode) for k in keys} == {0o600}
    assert all(Path(c).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----") for c in certs)  # umask decides
    assert all(Path(k).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----") for k in keys)


def test_help_prints_usage_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # it once made a folder named "--help" here, full of keys
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m ops.devpki [-h] DIR")
    assert list(tmp_path.iterdir()) == []
    assert main([str(tmp_path / "pki")]) == 0
    assert sorted(p.name for p in (tmp_path / "pki").iterdir()) == [
        "ca.pem", "client.key", "client.pem", "rogue.key", "rogue.pem", "server.key", "server.pem"]
