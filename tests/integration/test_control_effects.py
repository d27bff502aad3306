"""Effects verified against telemetry in the real database: `completed` only once a reading
shows the setpoint (±2 % of the unit's rating) or the mode, however late within
EFFECT_TIMEOUT_S; `failed` naming requested and reported values when it never does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from common.db import create_pool
from control_service.model import CommandRecord
from db.commands import CommandRepository
from tests.integration.test_control_api import add_unit

DEFAULT_RATED_KW = 1927.0


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[CommandRepository]:
    pool = await create_pool(database_url, max_size=2)
    yield CommandRepository(pool)
    await pool.close()


async def acknowledged(
    db: asyncpg.Connection, unit: str, type_: str, params: str, *, acked_s_ago: float = 1
) -> uuid.UUID:
    command_id = uuid.uuid4()
    await db.execute(
        """INSERT INTO commands (command_id, unit_id, kind, type, params, ttl_s, requested_by,
               request_digest, created_at, expires_at, status, sent_at, acknowledged_at)
           VALUES ($1, $2, 'megapack', $3, $4::jsonb, 30, 'ops', 'x', now() - INTERVAL '2 s',
               now() + INTERVAL '28 s', 'acknowledged', now() - INTERVAL '2 s',
               now() - $5::float8 * INTERVAL '1 second')""",
        command_id,
        unit,
        type_,
        params,
        acked_s_ago,
    )
    return command_id


async def reading(db: asyncpg.Connection, unit: str, power_kw: float, state: str) -> None:
    """A reading as the ingestion consumer stores it, received now."""
    await db.execute(
        """INSERT INTO megapack_telemetry (unit_id, time, site_id, soc_percent, power_kw,
               voltage_v, current_a, temperature_c, state, received_at)
           VALUES ($1, $2, 'SITE-01', 50, $3, 480, 0, 25, $4, now())""",
        unit,
        datetime.now(UTC),
        power_kw,
        state,
    )


def mine(commands: list[CommandRecord], unit: str) -> list[CommandRecord]:
    """Only this test's unit (the database is shared with the other tests of the run)."""
    return [command for command in commands if command.unit_id == unit]


async def status_of(db: asyncpg.Connection, command_id: uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT status, reason, achieved FROM commands WHERE command_id = $1", command_id
    )
    assert row is not None
    return row


async def test_a_setpoint_reached_late_completes_with_what_was_achieved(
    repository: CommandRepository, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db, rated_power_kw=1000)  # ±2 % is ±20 kW for this unit
    command = await acknowledged(db, unit, "set_power", '{"power_kw": 500, "hold_s": 0}')
    verify = {"default_rated_power_kw": DEFAULT_RATED_KW, "timeout_s": 30}
    for ramping_kw in (0.0, 200.0, 470.0):  # the unit ramps; none of these is within ±20 kW
        await reading(db, unit, ramping_kw, "DISCHARGING")
        assert mine(await repository.verify_effects(**verify), unit) == []
        assert (await status_of(db, command))["status"] == "acknowledged"
    await reading(db, unit, 491.5, "DISCHARGING")
    ended = mine(await repository.verify_effects(**verify), unit)
    assert [c.command_id for c in ended] == [command]
    done = await status_of(db, command)
    assert done["status"] == "completed"
    achieved = ended[0].achieved
    assert achieved is not None
    assert (achieved["power_kw"], achieved["state"]) == (491.5, "DISCHARGING")


async def test_a_mode_is_verified_by_the_state_the_unit_reports(
    repository: CommandRepository, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    command = await acknowledged(db, unit, "set_mode", '{"mode": "STANDBY", "hold_s": 0}')
    verify = {"default_rated_power_kw": DEFAULT_RATED_KW, "timeout_s": 30}
    await reading(db, unit, 300.0, "DISCHARGING")
    assert mine(await repository.verify_effects(**verify), unit) == []
    await reading(db, unit, 0.0, "STANDBY")
    assert [c.status for c in mine(await repository.verify_effects(**verify), unit)] == [
        "completed"
    ]
    assert (await status_of(db, command))["achieved"] is not None


async def test_an_effect_never_seen_fails_naming_requested_and_reported_values(
    repository: CommandRepository, db: asyncpg.Connection
) -> None:
    unit, silent = await add_unit(db), await add_unit(db)
    stuck = await acknowledged(db, unit, "set_power", '{"power_kw": 500}', acked_s_ago=40)
    quiet = await acknowledged(db, silent, "set_mode", '{"mode": "IDLE"}', acked_s_ago=40)
    await reading(db, unit, 120.0, "DISCHARGING")
    ended = await repository.verify_effects(default_rated_power_kw=DEFAULT_RATED_KW, timeout_s=30)
    assert {c.command_id for c in ended} == {stuck, quiet}
    failed = await status_of(db, stuck)
    assert failed["status"] == "failed"
    assert failed["reason"] == "requested 500 kW, unit reports 120.0 kW (DISCHARGING) after 30 s"
    assert (await status_of(db, quiet))["reason"] == (
        "requested IDLE, unit reports no telemetry since it was sent after 30 s"
    )


async def test_an_old_reading_from_before_the_command_proves_nothing(
    repository: CommandRepository, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    await db.execute(
        """INSERT INTO megapack_telemetry (unit_id, time, site_id, soc_percent, power_kw,
               voltage_v, current_a, temperature_c, state, received_at)
           VALUES ($1, now() - INTERVAL '10 s', 'SITE-01', 50, 500, 480, 0, 25,
               'DISCHARGING', now() - INTERVAL '10 s')""",
        unit,
    )
    command = await acknowledged(db, unit, "set_power", '{"power_kw": 500}')
    assert (
        await repository.verify_effects(default_rated_power_kw=DEFAULT_RATED_KW, timeout_s=30) == []
    )
    assert (await status_of(db, command))["status"] == "acknowledged"
