"""`<VARIABLE>_FILE`: a secret read from a file, an explicit environment value winning over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from api_gateway.settings import GatewaySettings
from common.keys import find_key
from common.settings import env_or_file, load_settings, with_password
from control_service.settings import ControlSettings


def _secret(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n")
    return str(path)


def test_a_field_is_read_from_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVICE_API_KEYS", raising=False)
    monkeypatch.setenv("DEVICE_API_KEYS_FILE", _secret(tmp_path, "keys", "sim:secret-from-file"))
    settings = load_settings(GatewaySettings, "api_gateway")
    assert [key.name for key in settings.device_api_keys] == ["sim"]
    assert find_key(settings.device_api_keys, "secret-from-file") is not None


def test_the_environment_wins_over_the_file_and_an_empty_value_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVICE_API_KEYS_FILE", _secret(tmp_path, "keys", "file:secret-from-file"))
    monkeypatch.setenv("DEVICE_API_KEYS", "env:secret-from-env")
    assert load_settings(GatewaySettings, "api_gateway").device_api_keys[0].name == "env"
    monkeypatch.setenv("DEVICE_API_KEYS", "")  # compose's `${DEVICE_API_KEYS:-}` when unset
    assert load_settings(GatewaySettings, "api_gateway").device_api_keys[0].name == "file"


def test_an_unreadable_file_stops_the_service_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPERATOR_API_KEYS", raising=False)
    monkeypatch.setenv("OPERATOR_API_KEYS_FILE", str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as stop:
        load_settings(ControlSettings, "control_service")
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"control_service: invalid configuration: OPERATOR_API_KEYS_FILE: cannot read "
        f"{tmp_path / 'missing'}: No such file or directory"
    )


def test_a_bad_value_in_a_file_is_named_like_one_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEVICE_API_KEYS", "sim:dev-secret-1")
    monkeypatch.setenv("MAX_BATCH_READINGS_FILE", _secret(tmp_path, "max", "0"))
    with pytest.raises(SystemExit):
        load_settings(GatewaySettings, "api_gateway")
    assert "MAX_BATCH_READINGS" in capsys.readouterr().err


def test_passwords_go_into_the_urls_that_lack_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVICE_API_KEYS", "sim:dev-secret-1")
    monkeypatch.setenv("AMQP_URL", "amqp://gateway@rabbitmq:5672/")
    monkeypatch.setenv("AMQP_PASSWORD_FILE", _secret(tmp_path, "amqp", "p@ss/word:1"))
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db:5432/megapack")
    monkeypatch.setenv("DATABASE_PASSWORD_FILE", _secret(tmp_path, "db", "db-secret"))
    settings = load_settings(GatewaySettings, "api_gateway")
    assert settings.amqp_url == "amqp://gateway:p%40ss%2Fword%3A1@rabbitmq:5672/"
    assert settings.database_url == "postgresql://postgres:db-secret@db:5432/megapack"
    assert "db-secret" not in repr(settings.database_password)


def test_with_password_keeps_given_passwords_and_fills_every_url_of_a_list() -> None:
    listed = "amqp://u@a:5672/,amqp://u:own@b:5672/, amqp://u@c:5672/v"
    filled = "amqp://u:pw@a:5672/,amqp://u:own@b:5672/,amqp://u:pw@c:5672/v"
    assert with_password(listed, "pw") == filled
    assert with_password("amqp://rabbitmq:5672/", "pw") == "amqp://rabbitmq:5672/"  # no user


def test_env_or_file_strips_only_the_final_newline(tmp_path: Path) -> None:
    path = _secret(tmp_path, "s", "  spaced value ")
    assert env_or_file("X", {"X_FILE": path}) == "  spaced value "
    assert env_or_file("X", {"X": "given", "X_FILE": path}) == "given"
    assert env_or_file("X", {}) is None
