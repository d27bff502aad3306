"""`python -m chaos --short`: faults of every kind under load, nothing acknowledged lost."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from chaos.run import COMMANDS
from tests.support.stack import ROOT

pytestmark = pytest.mark.slow  # `make test-fast` leaves these out

COMMAND_FAULTS = ("restart control (SIGKILL)", "SIGKILL unit agent") if COMMANDS else ()


def _figure(output: str, label: str) -> int:
    match = re.search(rf"^\s+{re.escape(label)}\s+(\d+)", output, re.MULTILINE)
    assert match, f"{label!r} missing from the chaos report:\n{output}"
    return int(match.group(1))


@pytest.mark.timeout(320)
def test_short_chaos_run_loses_and_duplicates_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "chaos", "--short", "--rate", "600"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=310,
        check=False,
    )
    output = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, output
    acknowledged = _figure(output, "acknowledged (202)")
    assert acknowledged > 5000, output
    assert _figure(output, "stored (right values)") == acknowledged
    assert _figure(output, "lost") == 0
    assert _figure(output, "duplicated") == 0
    assert _figure(output, "mismatched values") == 0
    retried = re.search(r"refused then retried\s+(\d+) readings, (\d+) landed", output)
    assert retried, output
    assert int(retried.group(1)) > 0
    assert retried.group(1) == retried.group(2)
    assert "3 of 3 planted, 0 unexpected" in output
    for fault in (
        "SIGKILL ingestion consumer 0",
        "SIGKILL ingestion consumer 1",
        "cut PostgreSQL",
        "cut RabbitMQ",
        "restart gateway (SIGTERM)",
        "restart gateway (SIGKILL)",
        "poison messages",
        *COMMAND_FAULTS,
    ):
        assert fault in output, f"{fault!r} not injected:\n{output}"
    assert output.count("caught:") == 3, output
    assert "MISSED" not in output
    if COMMAND_FAULTS:
        assert _figure(output, "commands issued") > 10
        assert _figure(output, "commands final") == _figure(output, "commands issued")
        assert _figure(output, "executed by the unit") > 0
        assert _figure(output, "executed twice") == 0
        assert _figure(output, "executed after expiry") == 0
        assert _figure(output, "wrong final status") == 0
        assert _figure(output, "answered, never issued") == 0
    assert "verdict: PASS" in output
