"""API keys parse strictly, match in constant time, and settings fail with one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.keys import find_key, parse_api_keys
from tests.support.stack import ROOT


def test_keys_parse_with_optional_scope() -> None:
    keys = parse_api_keys("sim:dev-secret,north:k-9f2abcd:site=SITE-01, ev:secret-ev1:fleet=F1")
    assert [(k.name, k.scope) for k in keys] == [
        ("sim", None),
        ("north", ("site", "SITE-01")),
        ("ev", ("fleet", "F1")),
    ]
    assert find_key(keys, "k-9f2abcd") is keys[1]
    assert find_key(keys, "k-9f2abcX") is None
    assert find_key(keys, None) is None


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "nosecret",
        "a:short",
        "a:longenough:region=X",
        "a:longenough,a:otherlong1",
        "b c:longenough",
    ],
)
def test_bad_key_lists_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"entry|at least one"):
        parse_api_keys(spec)


def test_secrets_never_show_in_repr_or_errors() -> None:
    keys = parse_api_keys("sim:super-secret-value")
    assert "super-secret-value" not in repr(keys)
    with pytest.raises(ValueError, match="scope") as error:
        parse_api_keys("sim:super-secret-value:zone=1")
    assert "super-secret-value" not in str(error.value)


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
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
