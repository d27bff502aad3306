"""`python -m bench` runs end to end on a fresh database and prefix and loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import AMQP_URL, BASE_DATABASE_URL
from tests.support.stack import ROOT


def test_bench_short_run_lands_every_accepted_reading_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "protobuf", "--duration", "2", "--warmup", "1",
         "--json", str(out), "--amqp-url", AMQP_URL,
         "--database-url", f"{BASE_DATABASE_URL}/megapack"],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    results = json.loads(out.read_text())
    protobuf = results["protobuf"]
    assert protobuf["accepted_total"] > 0
    assert protobuf["landed_total"] == protobuf["accepted_total"]
    assert protobuf["lost"] == 0
    assert "Targets (issue 7)" in finished.stdout
    database = f"megapack_bench_{results['run_id']}"
    remaining = subprocess.run(
        ["psql", f"{BASE_DATABASE_URL}/postgres", "-tAc",
         f"SELECT count(*) FROM pg_database WHERE datname = '{database}'"],  # noqa: S608
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert remaining.stdout.strip() == "0", f"{database} was not dropped"
