"""Command-line values are checked by the parser, with the usual exit status 2 and no traceback."""

from __future__ import annotations

import pytest

from ops.cli import main
from ops.cli.args import loopback


@pytest.mark.parametrize("argv", [["worker", "--batch", "-3"], ["worker", "--batch", "0"], ["worker", "--poll", "-1"]])
def test_worker_numbers_must_be_positive(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "must be greater than 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False)],
)
def test_demo_mode_only_serves_on_loopback(host: str, expected: bool) -> None:
    assert loopback(host) is expected


def test_demo_mode_refuses_a_public_bind(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DD0C_MODE", "demo")
    assert main(["api", "--host", "0.0.0.0"]) == 1
    assert "demo mode serves on loopback only" in capsys.readouterr().err
