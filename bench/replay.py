"""The replay's throughput: 20 Megapacks, one simulated day at a 10 s interval, as fast as the
pipeline takes it (SIM_START a day back, SIM_SPEED far beyond what the stack can reach)."""

from __future__ import annotations

import time
from typing import Any

from bench.procs import Proc, cpu_seconds
from bench.stack import BENCH_KEY, CpuMeter, Stack

UNITS, INTERVAL_S, DAY_S, DAY_MS = 20, 10.0, 86_400, 86_400_000
SPEED = 100_000  # a day in under a second if the pipeline could: it cannot, so it saturates


async def replay(stack: Stack) -> dict[str, Any]:
    """Readings/s landed for the day's 172,800 readings, and what each process spent."""
    now_ms = time.time_ns() // 1_000_000
    start_ms = now_ms - now_ms % DAY_MS - DAY_MS  # the last whole day, in the past
    tag = f"REPLAY{stack.run_id}"
    expected = UNITS * round(DAY_S / INTERVAL_S)
    env = stack.env(
        MEGAPACK_COUNT=str(UNITS), EV_COUNT="0", SITE_COUNT="2", SIM_SEED="7", FAULT_RATE="0",
        TELEMETRY_INTERVAL_S=str(INTERVAL_S), SIM_DURATION_S=str(DAY_S),
        SIM_START=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_ms / 1000)),
        SIM_SPEED=str(SPEED), SIM_ID_PREFIX=f"{tag}-", SIM_AGENT="false",
        TELEMETRY_FORMAT="protobuf", GATEWAY_URL=stack.gateways[0].url, DEVICE_API_KEY=BENCH_KEY,
        LOG_LEVEL="INFO",
    )  # fmt: skip
    stack.say(f"replay: {UNITS} Megapacks, one simulated day at {INTERVAL_S:g} s, x{SPEED:,}")
    meter = await CpuMeter.start(stack)
    started = time.monotonic()
    proc = Proc("replay", "simulator", env).start()
    try:
        landed = await stack.wait_rows(tag, expected, timeout_s=900)
        wall_s = time.monotonic() - started
        sim_cpu_s = cpu_seconds(proc.pid)
        cpu = meter.read()
    finally:
        await proc.stop()
    first_last = await stack.scalar(
        "SELECT extract(epoch FROM max(time) - min(time)) FROM megapack_telemetry "
        "WHERE unit_id LIKE $1",
        tag + "-%",
    )
    result = {
        "readings": landed,
        "expected": expected,
        "wall_s": round(wall_s, 1),
        "landed_per_s": round(landed / wall_s),
        "simulated_span_s": float(first_last or 0),
        "speedup": round(DAY_S / wall_s),
        "simulator_cpu_s": round(sim_cpu_s, 1),
        "cpu_cores": cpu,
    }
    stack.say(
        f"  {landed:,} of {expected:,} readings in {wall_s:.1f} s: {result['landed_per_s']:,}/s "
        f"(a day in {wall_s:.0f} s, x{result['speedup']:,}); simulator CPU {sim_cpu_s:.1f} s"
    )
    return result
