"""Fleet operations with real processes: a verified setpoint whose hold lapses back to
STANDBY at 0 kW (telemetry shows it), and a group command to a site from the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest

from db.migrate import migrate
from tests.conftest import BASE_DATABASE_URL, RUN_ID
from tests.e2e.test_control_loop import (
    Stack,
    agent_listening,
    cli,
    eventually,
    final,
    readings_since,
    send,
    unit_state,
)
from tests.support.databases import drop_database
from tests.support.stack import OPERATOR_SECRET, service_env

pytestmark = pytest.mark.slow  # `make test-fast` leaves these out

HOLD_S = 4


@pytest.fixture(scope="module")
def fleet(amqp_url: str, amqp_prefix: str) -> Iterator[tuple[Stack, str]]:
    """The whole stack on a database of its own (a site selector sees only its units)."""
    name = f"megapack_test_{RUN_ID}_fleet_ops"
    url = f"{BASE_DATABASE_URL}/{name}"
    asyncio.run(migrate(url))
    built = Stack(service_env(database_url=url, amqp_url=amqp_url, prefix=f"{amqp_prefix}fleet."))
    built.control.env["EFFECT_TIMEOUT_S"] = "15"
    # a site of three Megapacks, one of them faulted (the group test counts on it)
    built.simulator.env.update(MEGAPACK_COUNT="3", SIM_FAULTED_UNITS="MP-0002")
    built.gateway.start().wait_ready(60)
    built.ingestion.start()
    built.control.start().wait_ready(60)
    built.simulator.start()
    asyncio.run(agent_listening(built))
    yield built, url
    for service in built.services():
        service.stop()
    asyncio.run(drop_database(url))


@pytest.fixture
async def ops(fleet: tuple[Stack, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=fleet[0].control.url, headers={"X-API-Key": OPERATOR_SECRET}, timeout=10
    ) as http:
        yield http


@pytest.fixture
async def db(fleet: tuple[Stack, str]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(fleet[1])
    yield conn
    await conn.close()


async def test_a_verified_setpoint_lapses_to_standby_when_its_hold_runs_out(
    fleet: tuple[Stack, str], ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    stack = fleet[0]
    await eventually(lambda: unit_state(db, "MP-0001", stack), lambda seen: seen is not None)
    body = {"type": "set_power", "params": {"power_kw": 400, "hold_s": HOLD_S}}
    command = await final(ops, (await send(ops, "MP-0001", body))["command_id"])
    assert command["status"] == "completed", command
    rated_kw = await db.fetchval("SELECT rated_power_kw FROM units WHERE unit_id = 'MP-0001'")
    assert abs(command["achieved"]["power_kw"] - 400) <= 0.02 * (rated_kw or 1927)

    async def probe() -> dict[str, Any]:
        latest: dict[str, Any] = (await ops.get(f"/v1/commands/{command['command_id']}")).json()
        return latest

    lapsed = await eventually(probe, lambda c: c["lapsed_at"] is not None, timeout_s=HOLD_S + 20)
    assert lapsed["status"] == "completed"  # the lapse is recorded, the status stays final
    lapsed_at = datetime.fromisoformat(lapsed["lapsed_at"])
    held = await readings_since(db, "MP-0001", datetime.fromisoformat(command["completed_at"]))
    assert any(abs(r["power_kw"] - 400) < 40 for r in held if r["time"] < lapsed_at)
    rows = await eventually(
        lambda: readings_since(db, "MP-0001", lapsed_at),
        # 0 kW asked of the battery: what remains is the standby auxiliary draw (cooling, a
        # few kW from the grid, SIM_AUX_KW), never a held setpoint
        lambda rows: any(r["state"] == "STANDBY" and abs(r["power_kw"]) < 10 for r in rows),
        timeout_s=15,
    )
    assert rows


async def test_a_group_command_to_a_site_from_the_cli(
    fleet: tuple[Stack, str], db: asyncpg.Connection
) -> None:
    stack = fleet[0]
    await eventually(
        lambda: db.fetchval("SELECT count(*) FROM units WHERE site_id = 'SITE-01'"),
        lambda count: count == 3,
    )
    await eventually(lambda: unit_state(db, "MP-0002", stack), lambda seen: seen == "FAULT")
    done = await asyncio.to_thread(
        cli, stack, "send", "--site", "SITE-01", "set_mode", "--mode", "IDLE", "--wait", "--json"
    )
    assert done.returncode == 1, done.stdout + done.stderr  # one unit refused it
    group = json.loads(done.stdout)
    assert group["counts"] == {"completed": 2, "rejected": 1}, group
    by_unit = {c["unit_id"]: c for c in group["commands"]}
    assert "FAULT" in by_unit["MP-0002"]["reason"]
    assert by_unit["MP-0001"]["achieved"]["state"] == "IDLE"
