"""Group commands against the real service, RabbitMQ and PostgreSQL: per-unit outcomes, one
statement, idempotency, and hostile input refused with nothing created."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration.test_control_api import JSON, add_unit, bind_command_sink, control_service
from tests.support.readings import unique
from tests.support.stack import OPERATOR_SECRET, Service


@pytest.fixture(scope="module")
def control(stack_env: dict[str, str]) -> Iterator[Service]:
    bind_command_sink(stack_env["AMQP_URL"], stack_env["AMQP_PREFIX"])
    service = control_service(stack_env).start().wait_ready(60)
    yield service
    service.stop()


async def delivered(http: httpx.AsyncClient, group_id: str, timeout_s: float = 30) -> Any:
    """The group once none of its commands is still pending (they are published after the
    answer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        group = (await http.get(f"/v1/command-groups/{group_id}")).json()
        if "pending" not in group["counts"] or time.monotonic() > deadline:
            return group
        await asyncio.sleep(0.1)


@pytest.fixture
async def ops(control: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=control.url, headers={"X-API-Key": OPERATOR_SECRET, **JSON}, timeout=30
    ) as http:
        yield http


async def test_each_unit_gets_its_command_or_a_rejection_with_the_reason(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    healthy, small = await add_unit(db), await add_unit(db, rated_power_kw=500)
    faulted, vehicle = await add_unit(db, state="FAULT"), await add_unit(db, "EV", kind="ev")
    unknown = unique("MP-NONE")
    body = {
        "selector": {"unit_ids": [healthy, small, faulted, vehicle, unknown]},
        "type": "set_power",
        "params": {"power_kw": 800, "hold_s": 120},
        "ttl_s": 20,
    }
    answer = await ops.post("/v1/command-groups", json=body)
    assert answer.status_code == 202, answer.text
    assert answer.json()["commands"] == 5
    group = await delivered(ops, answer.json()["group_id"])
    by_unit = {c["unit_id"]: c for c in group["commands"]}
    assert by_unit[healthy]["status"] == "sent"
    reasons = {unit: by_unit[unit]["reason"] for unit in (small, faulted, vehicle, unknown)}
    assert {by_unit[unit]["status"] for unit in reasons} == {"rejected"}
    assert "±500 kW" in reasons[small]
    assert "FAULT" in reasons[faulted]
    assert "megapack command" in reasons[vehicle]
    assert "unknown unit" in reasons[unknown]
    assert group["counts"] == {"sent": 1, "rejected": 4}
    one = (await ops.get(f"/v1/commands/{by_unit[healthy]['command_id']}")).json()
    assert (one["group_id"], one["params"]) == (group["group_id"], body["params"])
    assert one["expires_at"] > one["created_at"]


async def test_a_site_selector_takes_the_units_of_that_site_at_that_moment(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    site = unique("SITE")
    units = sorted([await add_unit(db) for _ in range(3)])
    await db.execute("UPDATE units SET site_id = $1 WHERE unit_id = ANY($2::text[])", site, units)
    body = {"selector": {"site_id": site}, "type": "set_mode", "params": {"mode": "STANDBY"}}
    answer = await ops.post("/v1/command-groups", json=body)
    assert (answer.status_code, answer.json()["commands"]) == (202, 3), answer.text
    group = await delivered(ops, answer.json()["group_id"])
    assert [c["unit_id"] for c in group["commands"]] == units
    assert group["counts"] == {"sent": 3}
    empty = await ops.post("/v1/command-groups", json={**body, "selector": {"site_id": "NOPE"}})
    assert empty.status_code == 404


async def test_the_same_idempotency_key_gives_the_same_group(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    key = {"Idempotency-Key": unique("group")}
    body = {"selector": {"unit_ids": [unit]}, "type": "set_mode", "params": {"mode": "IDLE"}}
    first = await ops.post("/v1/command-groups", json=body, headers=key)
    again = await ops.post("/v1/command-groups", json=body, headers=key)
    assert first.json()["group_id"] == again.json()["group_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await ops.post(
        "/v1/command-groups", json={**body, "params": {"mode": "STANDBY"}}, headers=key
    )
    assert other.status_code == 409
    assert await db.fetchval("SELECT count(*) FROM commands WHERE unit_id = $1", unit) == 1


def _hostile() -> list[tuple[dict[str, Any], str]]:
    base: dict[str, Any] = {"type": "set_mode", "params": {"mode": "IDLE"}}
    units = {"unit_ids": ["MP-0001"]}
    now = datetime.now(UTC)
    return [
        ({**base, "selector": {"unit_ids": ["MP-0001"], "region": "x"}}, "region"),
        ({**base, "selector": {"region": "north"}}, "region"),
        ({**base, "selector": {}}, "exactly one"),
        ({**base, "selector": {"site_id": "SITE-01", "unit_ids": ["MP-1"]}}, "exactly one"),
        ({**base, "selector": {"unit_ids": []}}, "unit_ids"),
        ({**base, "selector": {"unit_ids": [f"MP-{i}" for i in range(10_001)]}}, "unit_ids"),
        ({**base, "selector": {"unit_ids": ["bad id!"]}}, "unit_ids"),
        ({**base, "selector": units, "not_before": (now - timedelta(hours=1)).isoformat()},
         "not_before"),
        ({**base, "selector": units, "not_before": (now + timedelta(days=900)).isoformat()},
         "not_before"),
        ({**base, "selector": units, "not_before": "2026-12-01T10:00:00"}, "not_before"),
        ({**base, "selector": units, "params": {"mode": "IDLE", "hold_s": -5}}, "hold_s"),
        ({**base, "selector": units, "params": {"mode": "IDLE", "hold_s": 10**8}}, "hold_s"),
        ({**base, "selector": units, "ttl_s": 0}, "ttl_s"),
        ({**base, "selector": units, "type": "launch"}, "type"),
        ({"type": "set_soc_limits", "params": {"min_percent": 80, "max_percent": 20},
          "selector": units}, "min_percent"),
    ]  # fmt: skip


@pytest.mark.parametrize(("body", "names"), _hostile())
async def test_hostile_group_requests_are_422_naming_the_field_and_create_nothing(
    ops: httpx.AsyncClient, db: asyncpg.Connection, body: dict[str, Any], names: str
) -> None:
    before = await db.fetchval("SELECT count(*) FROM command_groups")
    commands_before = await db.fetchval("SELECT count(*) FROM commands")
    answer = await ops.post("/v1/command-groups", json=body)
    assert answer.status_code == 422, answer.text
    assert names in answer.text
    assert await db.fetchval("SELECT count(*) FROM command_groups") == before
    assert await db.fetchval("SELECT count(*) FROM commands") == commands_before


async def test_hostile_single_commands_are_422_naming_the_field(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    past = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    for body, names in (
        ({"type": "set_mode", "params": {"mode": "IDLE"}, "not_before": past}, "not_before"),
        ({"type": "set_power", "params": {"power_kw": 5, "hold_s": -1}}, "hold_s"),
        ({"type": "set_power", "params": {"power_kw": 5, "hold_s": 86_401}}, "hold_s"),
    ):
        answer = await ops.post(f"/v1/units/{unit}/commands", json=body)
        assert answer.status_code == 422, answer.text
        assert names in answer.text
    assert await db.fetchval("SELECT count(*) FROM commands WHERE unit_id = $1", unit) == 0


async def test_a_large_group_is_stored_in_one_go_and_every_command_is_sent(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    site = unique("SITE-BIG")
    units = [unique("MP-BIG") for _ in range(500)]
    await db.executemany(
        """INSERT INTO units (unit_id, kind, site_id, last_seen, last_state, last_soc_percent)
           VALUES ($1, 'megapack', $2, now(), 'IDLE', 50)""",
        [(unit, site) for unit in units],
    )
    started = time.monotonic()
    answer = await ops.post(
        "/v1/command-groups",
        json={"selector": {"site_id": site}, "type": "set_power", "params": {"power_kw": 100}},
    )
    assert (answer.status_code, answer.json()["commands"]) == (202, 500), answer.text
    group = await delivered(ops, answer.json()["group_id"])
    assert group["counts"] == {"sent": 500}, (group["counts"], time.monotonic() - started)
    seqs = await db.fetch(
        "SELECT seq FROM commands WHERE group_id = $1::uuid ORDER BY seq", group["group_id"]
    )
    assert seqs[-1]["seq"] - seqs[0]["seq"] == 499  # one statement: consecutive
