"""A service with a bad setting stops with one clear line naming the variable (a subprocess)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.stack import ROOT


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "DEVICE_API_KEYS is required but not set"),
        ({"DEVICE_API_KEYS": "sim:dev-secret-1", "MAX_BATCH_READINGS": "0"}, "MAX_BATCH_READINGS"),
        ({"DEVICE_API_KEYS": "sim:dev-secret-1", "GATEWAY_PORT": "http"}, "GATEWAY_PORT"),
        ({"DEVICE_API_KEYS": "sim:dev-secret-1", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_bad_configuration_stops_with_one_line_naming_the_variable(
    env: dict[str, str], expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api_gateway"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
