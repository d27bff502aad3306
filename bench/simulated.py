"""The simulator's own cost: 5,000 Megapacks + 5,000 EVs at 1 Hz against the gateway."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import Proc, cpu_seconds
from bench.stack import BENCH_KEY, Stack

COUNTS = {"MEGAPACK_COUNT": "5000", "EV_COUNT": "5000"}


def available() -> bool:
    """Whether `python -m simulator` exists in this checkout."""
    return importlib.util.find_spec("simulator.__main__") is not None


async def simulator(stack: Stack) -> dict[str, Any]:
    """CPU seconds per wall second of the simulator process, and what reached the database."""
    if not available():
        stack.say("simulator: not present in this checkout, skipped")
        return {"skipped": "python -m simulator not found"}
    warmup_s, duration_s = max(5.0, stack.options.warmup_s), stack.options.duration_s
    journal = Path(tempfile.gettempdir()) / f"bench-{os.getpid()}-agent.journal"
    env = stack.env(
        **COUNTS,
        GATEWAY_URL=stack.gateways[0].url,
        DEVICE_API_KEY=BENCH_KEY,
        SIM_DURATION_S=str(int(warmup_s + duration_s + 10)),
        SIM_SEED="7",
        SIM_AGENT_JOURNAL=str(journal),  # removed afterwards, like everything the bench makes
    )
    stack.say("simulator: 5,000 Megapacks + 5,000 EVs at 1 Hz")
    proc = Proc("simulator", "simulator", env).start()
    try:
        await asyncio.sleep(warmup_s)
        proc.assert_running()
        cpu_before, started = cpu_seconds(proc.pid), time.time()
        await asyncio.sleep(duration_s)
        proc.assert_running()
        cores = (cpu_seconds(proc.pid) - cpu_before) / (time.time() - started)
        proc.sample_peak()
    finally:
        await proc.stop()
        journal.unlink(missing_ok=True)
    landed = {}
    for table in ("megapack_telemetry", "ev_telemetry"):
        landed[table] = int(
            await stack.scalar(
                f"SELECT count(*) FROM {table} WHERE stored_at >= to_timestamp($1) "  # noqa: S608
                "AND stored_at < to_timestamp($2)",
                started,
                started + duration_s,
            )
        )
    result = {
        "cpu_cores": round(cores, 3),
        "peak_rss_mb": proc.peak_rss_kb // 1024,
        "landed_per_s": {t: round(n / duration_s) for t, n in landed.items()},
    }
    stack.say(f"  simulator used {cores:.2f} cores; landed {result['landed_per_s']}")
    return result
