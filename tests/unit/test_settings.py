"""Settings are validated once, at start-up, with messages that name the environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.cli import main
from ops.settings import DEFAULT_SECRET, Settings, SettingsError, load_settings


def test_a_bad_value_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD0C_WORKER_BATCH", "abc")
    with pytest.raises(SettingsError, match=r"DD0C_WORKER_BATCH: .*integer.*'abc'"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DD0C_WORKER_BATCH", "0"), ("DD0C_WORKER_BATCH", "-3"), ("DD0C_API_PORT", "99999"),
     ("DD0C_JWT_TTL_SECONDS", "-5"), ("DD0C_MODE", "prod")],
)
def test_out_of_range_values_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_a_bad_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD0C_JWT_TTL_SECONDS", "x")
    monkeypatch.setenv("DD0C_JWT_SECRET", "s3cr3t-value-that-must-not-leak-0123456789")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    ("secret", "message"),
    [(DEFAULT_SECRET, "built-in default"), ("", "is 0 bytes"), ("a", "is 1 bytes"), ("x" * 31, "is 31 bytes")],
)
def test_the_api_secret_must_be_real_outside_demo_mode(secret: str, message: str) -> None:
    from schemas.events import Dd0cError

    with pytest.raises(Dd0cError, match=message):
        Settings(jwt_secret=secret).require_real_secret()
    Settings(jwt_secret=secret, mode="demo").require_real_secret()  # demo mode accepts anything
    Settings(jwt_secret="y" * 32).require_real_secret()


def test_cli_reports_a_bad_setting_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DD0C_WORKER_BATCH", "abc")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    assert main(["worker", "--drain"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dd0c-cost: invalid setting DD0C_WORKER_BATCH")
    assert "\n" not in err


def test_links_follow_the_api_address_unless_a_public_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DD0C_PUBLIC_URL", raising=False)
    monkeypatch.setenv("DD0C_API_PORT", "18080")
    assert load_settings().link_base == "http://127.0.0.1:18080"  # a moved API does not leave Slack links dead
    monkeypatch.setenv("DD0C_API_HOST", "0.0.0.0")
    assert load_settings().link_base == "http://127.0.0.1:18080"  # a wildcard bind is not an address to open
    monkeypatch.setenv("DD0C_PUBLIC_URL", "https://cost.example.com/")
    assert load_settings().link_base == "https://cost.example.com"


def test_the_missing_schema_hint_names_the_embedded_data_dir(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    from ops.runtime import missing_schema_hint

    for name in ("DATABASE_URL", "DD0C_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DD0C_DATA_DIR", str(tmp_path / "elsewhere"))
    assert missing_schema_hint() == (
        "the database has no dd0c/cost schema yet: run `dd0c-cost migrate` - or, if your data is in a demo started "
        f"with another DD0C_DATA_DIR, set that: this is the embedded database under {tmp_path / 'elsewhere'} "
        "(`dd0c-cost demo --stop` stops it)")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/x")  # a server of the user's: no guess
    assert missing_schema_hint() == "the database has no dd0c/cost schema yet: run `dd0c-cost migrate`"
