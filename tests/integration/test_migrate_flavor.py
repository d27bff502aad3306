"""Migrations keep the flavor a database was first migrated with; `--to-timescale` converts.

Against the real PostgreSQL of the test machine (plain: no TimescaleDB). The conversion itself
needs a server with the TimescaleDB extension: set TEST_TIMESCALE_URL (a server URL without a
database, e.g. postgresql://postgres@127.0.0.1:5433) to run it; this file's own database is
created there and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from db import migrate as migrate_module
from db.convert import to_timescale
from db.migrate import MigrationError, migrate
from tests.conftest import BASE_DATABASE_URL
from tests.support.stack import ROOT

TIMESCALE_URL = os.environ.get("TEST_TIMESCALE_URL", "")


async def _fresh(server: str) -> AsyncIterator[str]:
    name = f"megapack_flavor_{uuid.uuid4().hex[:10]}"
    yield f"{server}/{name}"
    admin = await asyncpg.connect(f"{server}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def plain_url() -> AsyncIterator[str]:
    async for url in _fresh(BASE_DATABASE_URL):
        yield url


async def _flavors(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        return {r["flavor"] for r in await conn.fetch("SELECT flavor FROM schema_migrations")}
    finally:
        await conn.close()


async def test_a_plain_database_keeps_its_flavor_when_timescale_appears(
    plain_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = await migrate(plain_url)
    assert applied
    assert await _flavors(plain_url) == {"postgres"}

    async def available(conn: asyncpg.Connection) -> bool:
        return True  # as if the TimescaleDB extension had been installed since

    monkeypatch.setattr(migrate_module, "timescale_available", available)
    # Had it switched flavor, it would CREATE EXTENSION (absent here: an error) and then add
    # retention policies to tables that are not hypertables (the traceback of the issue).
    assert await migrate(plain_url) == []
    assert await _flavors(plain_url) == {"postgres"}


async def test_conversion_without_the_extension_is_one_clear_line(plain_url: str) -> None:
    await migrate(plain_url)
    with pytest.raises(MigrationError, match="timescaledb extension is not available"):
        await to_timescale(plain_url)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "db", "migrate", "--to-timescale"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": plain_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "db: migration failed: --to-timescale: the timescaledb extension is not available "
        "on this server"
    )
    assert "Traceback" not in done.stderr
    assert await _flavors(plain_url) == {"postgres"}  # nothing changed


async def test_a_failing_migration_names_its_file_in_one_line(
    plain_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE flavor_probe (id int);")
    (tmp_path / "0002_broken.sql").write_text("ALTER TABLE no_such_table\n ADD COLUMN x int;")
    with pytest.raises(MigrationError) as error:
        await migrate(plain_url, directory=tmp_path)
    assert str(error.value) == ('0002_broken.sql failed: relation "no_such_table" does not exist')
    assert "\n" not in str(error.value)


@pytest.mark.skipif(not TIMESCALE_URL, reason="TEST_TIMESCALE_URL names no TimescaleDB server")
async def test_to_timescale_converts_with_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    async for url in _fresh(TIMESCALE_URL):

        async def unavailable(conn: asyncpg.Connection) -> bool:
            return False

        with monkeypatch.context() as patch:  # migrated as on a server without the extension
            patch.setattr(migrate_module, "timescale_available", unavailable)
            await migrate(url)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "INSERT INTO megapack_telemetry (unit_id, time, site_id, soc_percent, power_kw, "
                "received_at, voltage_v, current_a, temperature_c, state) "
                "SELECT 'MP-' || n % 7, "
                "now() - n * interval '1 minute', 'S', 50, 1, now(), 480, 2, 20, 'IDLE' "
                "FROM generate_series(1, 500) n"
            )
            assert await migrate(url) == []  # extension available now: flavor kept
            assert await _flavors(url) == {"postgres"}
            converted = await to_timescale(url)
            assert "0002_telemetry_extras" in converted
            assert await _flavors(url) == {"timescale"}
            hypertables = await conn.fetch(
                "SELECT hypertable_name FROM timescaledb_information.hypertables"
            )
            assert {"megapack_telemetry", "ev_telemetry"} <= {r[0] for r in hypertables}
            assert await conn.fetchval("SELECT count(*) FROM megapack_telemetry") == 500
            aggregates = await conn.fetch(
                "SELECT view_name FROM timescaledb_information.continuous_aggregates"
            )
            assert {r[0] for r in aggregates} == {"megapack_telemetry_1m", "ev_telemetry_1m"}
            bucketed = await conn.fetchval("SELECT sum(readings) FROM megapack_telemetry_1m")
            assert bucketed == 500
            jobs = await conn.fetch("SELECT proc_name FROM timescaledb_information.jobs")
            assert {"policy_retention", "policy_compression"} <= {r[0] for r in jobs}
            indexes = await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'megapack_telemetry'"
            )
            names = {r[0] for r in indexes}  # as a database migrated on TimescaleDB has them
            assert "megapack_telemetry_time_idx" in names
            assert not names & {"megapack_telemetry_time_brin", "megapack_telemetry_site_time_idx"}
            assert await to_timescale(url) == []  # again: nothing to convert, no error
            assert await migrate(url) == []
        finally:
            await conn.close()
