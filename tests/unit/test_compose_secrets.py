"""deploy.secrets: every secret generated once, kept on the next boot, overridable, never shown."""

from __future__ import annotations

import stat
from pathlib import Path

from common.keys import find_key, parse_api_keys
from deploy.rabbitmq.definitions import load_template, passwords_from_env
from deploy.secrets.store import ensure, groups, path_of, read

VARIABLES = [variable for group in groups() for variable in group.variables]


def test_first_boot_writes_every_secret_private_and_consistent(tmp_path: Path) -> None:
    written = ensure(tmp_path, {})
    assert sorted(written) == sorted(VARIABLES)
    for variable in VARIABLES:
        mode = stat.S_IMODE(path_of(tmp_path, variable).stat().st_mode)
        assert mode == 0o400, variable
        assert len(read(tmp_path, variable)) >= 24
    device = parse_api_keys(read(tmp_path, "DEVICE_API_KEYS"))
    assert find_key(device, read(tmp_path, "DEVICE_API_KEY")) is not None  # the simulator's
    operator = parse_api_keys(read(tmp_path, "OPERATOR_API_KEYS"))
    assert find_key(operator, read(tmp_path, "OPERATOR_API_KEY")) is not None
    assert read(tmp_path, "DEVICE_API_KEY") != read(tmp_path, "OPERATOR_API_KEY")
    files = {f"{v}_FILE": str(path_of(tmp_path, v)) for v in VARIABLES}
    passwords = passwords_from_env(load_template(), files)  # the broker's renderer reads them
    assert passwords["gateway"] == read(tmp_path, "RABBITMQ_GATEWAY_PASSWORD")


def test_a_second_boot_changes_nothing_and_a_lost_file_is_made_again(tmp_path: Path) -> None:
    ensure(tmp_path, {})
    before = {variable: read(tmp_path, variable) for variable in VARIABLES}
    assert ensure(tmp_path, {}) == []
    assert {variable: read(tmp_path, variable) for variable in VARIABLES} == before
    path_of(tmp_path, "DEVICE_API_KEY").unlink()
    assert sorted(ensure(tmp_path, {})) == ["DEVICE_API_KEY", "DEVICE_API_KEYS"]  # as a pair
    assert read(tmp_path, "DEVICE_API_KEYS").endswith(":" + read(tmp_path, "DEVICE_API_KEY"))
    assert read(tmp_path, "POSTGRES_PASSWORD") == before["POSTGRES_PASSWORD"]


def test_a_value_from_the_environment_replaces_the_generated_one(tmp_path: Path) -> None:
    ensure(tmp_path, {})
    given = {"OPERATOR_API_KEYS": "alice:alice-secret-1", "OPERATOR_API_KEY": "alice-secret-1"}
    assert sorted(ensure(tmp_path, given)) == ["OPERATOR_API_KEY", "OPERATOR_API_KEYS"]
    assert read(tmp_path, "OPERATOR_API_KEYS") == "alice:alice-secret-1"
    assert ensure(tmp_path, given) == []  # the same value again writes nothing
    assert ensure(tmp_path, {"OPERATOR_API_KEYS": ""}) == []  # empty means "not given"
