"""The whole loop: operator -> control service -> RabbitMQ -> simulated units -> telemetry -> DB."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import aio_pika
import asyncpg
import httpx
import pytest

from common.topology import Names
from tests.support.stack import (
    DEVICE_SECRET,
    OPERATOR_SECRET,
    ROOT,
    Service,
    free_port,
    service_env,
)

pytestmark = pytest.mark.slow  # `make test-fast` leaves these out

T = TypeVar("T")
FINAL = {"completed", "rejected", "failed", "expired"}
INTERVAL_S = 0.2


class Stack:
    """Gateway, ingestion, control service and simulator under one prefix of this module."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.gateway = Service("api_gateway", env, port=free_port())
        self.gateway.env["GATEWAY_PORT"] = str(self.gateway.port)
        self.ingestion = Service("ingestion_service", env)
        self.control = Service("control_service", env, port=free_port())
        self.control.env.update(
            CONTROL_PORT=str(self.control.port),
            COMMAND_SWEEP_INTERVAL_S="0.2",
            COMMAND_EXPIRY_GRACE_S="0.3",
        )
        self.simulator = Service("simulator", env)
        self.simulator.env.update(
            MEGAPACK_COUNT="4",
            EV_COUNT="1",
            SITE_COUNT="1",
            TELEMETRY_INTERVAL_S=str(INTERVAL_S),
            SIM_SEED="7",
            FAULT_RATE="0",
            GATEWAY_URL=self.gateway.url,
            DEVICE_API_KEY=DEVICE_SECRET,
            SIM_AGENT_ID="sim-e2e-control",
            SIM_FAULTED_UNITS="MP-0002,MP-0004",  # MP-0004 is reset, MP-0002 stays faulted
        )

    def agent_queue(self) -> str:
        return Names(self.env["AMQP_PREFIX"]).agent_queue(self.simulator.env["SIM_AGENT_ID"])

    def services(self) -> tuple[Service, ...]:
        return (self.simulator, self.control, self.ingestion, self.gateway)


async def agent_listening(stack: Stack, timeout_s: float = 30) -> None:
    """Wait until the simulator's agent consumes its queue (bound to every unit before that)."""
    deadline = time.monotonic() + timeout_s
    async with await aio_pika.connect(stack.env["AMQP_URL"]) as connection:
        while True:
            stack.simulator.assert_running()
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(stack.agent_queue(), passive=True)
                if queue.declaration_result.consumer_count:
                    return
            except aio_pika.exceptions.ChannelClosed:
                pass  # not declared yet (a failed passive declare closes the channel)
            assert time.monotonic() < deadline, "the simulator's agent never started consuming"
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, database_url: str, amqp_url: str, amqp_prefix: str
) -> Iterator[Stack]:
    module = request.module.__name__.rsplit(".", 1)[-1]
    env = service_env(
        database_url=database_url, amqp_url=amqp_url, prefix=f"{amqp_prefix}{module}."
    )
    built = Stack(env)
    built.gateway.start().wait_ready()
    built.ingestion.start()
    built.control.start().wait_ready()
    built.simulator.start()
    asyncio.run(agent_listening(built))
    yield built
    for service in built.services():
        service.stop()


@pytest.fixture
async def ops(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.control.url, headers={"X-API-Key": OPERATOR_SECRET}, timeout=10
    ) as http:
        yield http


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float = 30
) -> T:
    """Poll `probe` until `done` holds for its value; returns that value (fails on timeout)."""
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not done(value):
        assert time.monotonic() < deadline, f"condition not met in {timeout_s}s; last: {value!r}"
        await asyncio.sleep(0.05)
        value = await probe()
    return value


async def send(http: httpx.AsyncClient, unit: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post(f"/v1/units/{unit}/commands", json=body)
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def final(http: httpx.AsyncClient, command_id: str, timeout_s: float = 30) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        result: dict[str, Any] = (await http.get(f"/v1/commands/{command_id}")).json()
        return result

    return await eventually(probe, lambda command: command["status"] in FINAL, timeout_s)


async def unit_state(db: asyncpg.Connection, unit: str, stack: Stack) -> str | None:
    stack.simulator.assert_running()
    state: str | None = await db.fetchval("SELECT last_state FROM units WHERE unit_id = $1", unit)
    return state


async def readings_since(
    db: asyncpg.Connection, unit: str, since: datetime
) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            """SELECT time, state, power_kw, fault_codes FROM megapack_telemetry
               WHERE unit_id = $1 AND time > $2 ORDER BY time""",
            unit,
            since,
        )
    )


async def until_reporting(db: asyncpg.Connection, stack: Stack, unit: str, state: str) -> None:
    await eventually(lambda: unit_state(db, unit, stack), lambda seen: seen == state)


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTROL_URL": stack.control.url, "OPERATOR_API_KEY": OPERATOR_SECRET}
    return subprocess.run(
        [sys.executable, "-m", "control_service", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_set_mode_discharging_from_the_cli_shows_in_telemetry(
    stack: Stack, ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await eventually(lambda: unit_state(db, "MP-0001", stack), lambda seen: seen is not None)
    done = await asyncio.to_thread(
        cli, stack, "send", "MP-0001", "set_mode", "--mode", "DISCHARGING", "--wait", "--json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    command = json.loads(done.stdout)
    assert command["status"] == "completed"
    created = datetime.fromisoformat(command["created_at"])
    rows = await eventually(
        lambda: readings_since(db, "MP-0001", created),
        lambda rows: any(r["state"] == "DISCHARGING" and r["power_kw"] > 0 for r in rows),
        timeout_s=10,
    )
    first = next(r for r in rows if r["state"] == "DISCHARGING" and r["power_kw"] > 0)
    assert (first["time"] - created).total_seconds() < 5 * INTERVAL_S + 1


async def test_operator_refusals_on_the_real_stack(
    stack: Stack, ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await until_reporting(db, stack, "MP-0002", "FAULT")
    beyond = await ops.post(
        "/v1/units/MP-0001/commands", json={"type": "set_power", "params": {"power_kw": 2500}}
    )
    assert beyond.status_code == 422
    faulted = await ops.post(
        "/v1/units/MP-0002/commands", json={"type": "set_power", "params": {"power_kw": 100}}
    )
    assert faulted.status_code == 409
    async with httpx.AsyncClient(base_url=stack.control.url, timeout=10) as anonymous:
        body = {"type": "set_mode", "params": {"mode": "IDLE"}}
        device = await anonymous.post(
            "/v1/units/MP-0001/commands", json=body, headers={"X-API-Key": DEVICE_SECRET}
        )
        nobody = await anonymous.post("/v1/units/MP-0001/commands", json=body)
    assert (device.status_code, nobody.status_code) == (403, 401)


async def test_reset_fault_clears_the_fault(
    stack: Stack, ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await until_reporting(db, stack, "MP-0004", "FAULT")
    command = await send(ops, "MP-0004", {"type": "reset_fault"})
    done = await final(ops, command["command_id"])
    assert done["status"] == "completed", done
    rows = await eventually(
        lambda: readings_since(db, "MP-0004", datetime.fromisoformat(done["completed_at"])),
        lambda rows: len(rows) >= 2,
    )
    assert all(row["state"] != "FAULT" and row["fault_codes"] == [] for row in rows)


async def test_the_same_idempotency_key_gives_the_same_command(
    stack: Stack, ops: httpx.AsyncClient
) -> None:
    body = {"type": "set_soc_limits", "params": {"min_percent": 5, "max_percent": 95}}
    headers = {"Idempotency-Key": f"e2e-{time.time_ns()}"}
    first = await ops.post("/v1/units/MP-0003/commands", json=body, headers=headers)
    again = await ops.post("/v1/units/MP-0003/commands", json=body, headers=headers)
    assert first.json()["command_id"] == again.json()["command_id"]
    assert (await final(ops, first.json()["command_id"]))["status"] == "completed"
