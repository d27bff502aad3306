"""`python -m chaos.cluster`: node loss on a three-node cluster under load, nothing lost.

A shortened run of `make cluster-chaos` (`--short`: the faults one second apart; the cluster's
boot and the node faults themselves take two to four minutes). The machine's own broker must be
the same single node after.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from chaos.rabbit_cluster import machine_broker_nodes
from chaos.run import COMMANDS
from tests.support.stack import ROOT

NODE_FAULTS = (
    r"SIGKILL leader node c\d",
    r"restart \+ rejoin c\d",
    r"rolling restart c1",
    r"rolling restart c2",
    r"rolling restart c3",
    r"SIGSTOP leader node c\d",
    r"SIGCONT c\d after \d+s \(heals\)",
)


def _figure(output: str, label: str) -> int:
    match = re.search(rf"^\s+{re.escape(label)}\s+(\d+)", output, re.MULTILINE)
    assert match, f"{label!r} missing from the cluster chaos report:\n{output}"
    return int(match.group(1))


@pytest.mark.slow  # `make test-fast` leaves it out
@pytest.mark.timeout(900)
def test_cluster_chaos_loses_and_duplicates_nothing_and_leaves_the_machine_broker_alone() -> None:
    before = machine_broker_nodes()
    assert len(before) == 1, before
    run = subprocess.run(
        [sys.executable, "-m", "chaos.cluster", "--short", "--rate", "300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=870,
        check=False,
    )
    output = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, output
    acknowledged = _figure(output, "acknowledged (202)")
    assert acknowledged > 3000, output
    assert _figure(output, "stored (right values)") == acknowledged
    assert _figure(output, "lost") == 0
    assert _figure(output, "duplicated") == 0
    assert _figure(output, "mismatched values") == 0
    assert _figure(output, "abandoned by the client") == 0
    assert "3 of 3 planted, 0 unexpected" in output
    for fault in NODE_FAULTS:
        line = re.search(rf"{fault}.*recovered in\s+([\d.]+)s", output)
        assert line, f"{fault!r} not injected or never recovered:\n{output}"
    assert "NEVER RECOVERED" not in output
    assert "MISSED" not in output
    assert re.search(r"gateway 503 answers\s+\d+", output), output
    if COMMANDS:
        assert _figure(output, "commands issued") > 5
        assert _figure(output, "commands final") == _figure(output, "commands issued")
        assert _figure(output, "executed by the unit") > 0
        assert _figure(output, "executed twice") == 0
        assert _figure(output, "executed after expiry") == 0
        assert _figure(output, "wrong final status") == 0
    assert "verdict: PASS" in output
    assert "(unchanged)" in output
    assert machine_broker_nodes() == before
