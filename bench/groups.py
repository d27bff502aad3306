"""Group commands at fleet scale: one command to each of 1,000 simulated Megapacks, from the
request to every unit `completed` (verified from telemetry), and the control service's CPU.

`python -m bench.groups` runs this scenario alone (`python -m bench --only groups` does too).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from bench.procs import Proc, cpu_seconds, free_port
from bench.stack import BENCH_KEY, Stack
from common.topology import Names

UNITS = 1000
OPERATOR_KEY = "bench-operator-secret"
FINAL = {"completed", "rejected", "failed", "expired", "superseded"}
# (label, body): a mode the telemetry must show, and limits whose completion the unit reports.
GROUPS = (
    ("set_mode (verified from telemetry)", {"type": "set_mode", "params": {"mode": "IDLE"}}),
    ("set_soc_limits (unit-reported)",
     {"type": "set_soc_limits", "params": {"min_percent": 5, "max_percent": 95}}),
)  # fmt: skip


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def _until(probe: Any, done: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not done(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        value = await probe()
    return value


async def group_commands(stack: Stack) -> dict[str, Any]:
    """Start a control service and a 1,000-Megapack simulator; measure one group per body."""
    journal = Path(tempfile.gettempdir()) / f"bench-{os.getpid()}-groups-agent.journal"
    port = free_port()
    control = Proc(
        "control", "control_service",
        # A slow confirm is waited for, not published again (a busy broker is slower still
        # with duplicates): PUBLISH_TIMEOUT_S and COMMAND_REPUBLISH_AFTER_S at 30 s.
        stack.env(OPERATOR_API_KEYS=f"ops:{OPERATOR_KEY}", CONTROL_PORT=str(port),
                  COMMAND_SWEEP_INTERVAL_S="0.2", EFFECT_TIMEOUT_S="120",
                  PUBLISH_TIMEOUT_S="30", COMMAND_REPUBLISH_AFTER_S="30"),
        port=port,
    ).start()  # fmt: skip
    simulator = Proc(
        "simulator-groups", "simulator",
        stack.env(MEGAPACK_COUNT=str(UNITS), EV_COUNT="0", SITE_COUNT="1", FAULT_RATE="0",
                  SIM_SEED="7", TELEMETRY_INTERVAL_S="1", GATEWAY_URL=stack.gateways[0].url,
                  DEVICE_API_KEY=BENCH_KEY, SIM_AGENT_ID="sim",
                  SIM_AGENT_JOURNAL=str(journal)),
    )  # fmt: skip
    results: dict[str, Any] = {"units": UNITS}
    try:
        await control.wait_ready(120)
        simulator.start()
        stack.say(f"groups: {UNITS} simulated Megapacks reporting...")
        await _until(
            lambda: stack.scalar("SELECT count(*) FROM units WHERE site_id = 'SITE-01'"),
            lambda count: count >= UNITS,
            300,
        )
        # The agent binds every unit before it consumes: until then a command is unroutable.
        await _until(lambda: _agent_consumers(stack), lambda count: count >= 1, 300)
        async with httpx.AsyncClient(
            base_url=control.url, headers={"X-API-Key": OPERATOR_KEY}, timeout=60
        ) as http:
            for label, body in GROUPS:
                results[label] = await _one_group(stack, http, control, body)
                stack.say(f"  {label}: {results[label]}")
    finally:
        await simulator.stop()
        await control.stop()
        journal.unlink(missing_ok=True)
    return results


async def _agent_consumers(stack: Stack) -> int:
    connection = await aio_pika.connect(stack.options.amqp_url)
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(
                Names(stack.prefix).agent_queue("sim"), passive=True
            )
        except aio_pika.exceptions.ChannelClosed:
            return 0  # not declared yet
        return int(queue.declaration_result.consumer_count or 0)


async def _one_group(
    stack: Stack, http: httpx.AsyncClient, control: Proc, body: dict[str, Any]
) -> dict[str, Any]:
    cpu_before, started = cpu_seconds(control.pid), time.monotonic()
    answer = await http.post(
        "/v1/command-groups", json={**body, "selector": {"site_id": "SITE-01"}, "ttl_s": 300}
    )
    answer.raise_for_status()
    accepted_s = time.monotonic() - started
    group_id = answer.json()["group_id"]

    async def probe() -> dict[str, Any]:
        group: dict[str, Any] = (await http.get(f"/v1/command-groups/{group_id}")).json()
        return group

    group = await _until(probe, lambda g: all(c["status"] in FINAL for c in g["commands"]), 300)
    all_final_s = time.monotonic() - started
    cpu_s = cpu_seconds(control.pid) - cpu_before
    rows = await stack.db.fetch(  # type: ignore[union-attr]
        """SELECT extract(epoch FROM completed_at - created_at) AS s FROM commands
           WHERE group_id = $1::uuid AND status = 'completed'""",
        group_id,
    )
    per_unit = [float(row["s"]) for row in rows]
    return {
        "commands": answer.json()["commands"],
        "counts": group["counts"],
        "accepted_ms": round(accepted_s * 1000),
        "all_final_s": round(all_final_s, 2),
        "per_unit_p50_s": round(_percentile(per_unit, 0.50), 3),
        "per_unit_p99_s": round(_percentile(per_unit, 0.99), 3),
        "control_cpu_ms_per_command": round(cpu_s * 1000 / max(1, len(group["commands"])), 3),
    }


def main() -> None:
    """`python -m bench.groups [bench options]`: only this scenario."""
    from bench.__main__ import main as bench_main

    bench_main(["--only", "groups", *sys.argv[1:]])


if __name__ == "__main__":
    main()
