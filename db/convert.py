"""`python -m db migrate --to-timescale`: a database migrated on plain PostgreSQL, converted.

The database is first brought up to date in its recorded flavor. Then, version by version,
where the `timescale` flavor has a file of its own: the version's `.to_timescale.sql` (what
the `.postgres` variant made that would stand in the way, such as the plain views named like
the continuous aggregates) and then its `.timescale` variant (hypertables created with
`migrate_data`, so every row is kept; compression, aggregates, policies). Every step can run
again: a conversion cut short is finished by running the command again, and the recorded
flavor changes to `timescale` only once everything is done.
"""

from __future__ import annotations

import asyncpg
import structlog

from db.migrate import (
    Migration,
    MigrationError,
    apply_pending,
    apply_retention,
    choose_flavor,
    locked,
    plan,
    recorded_flavors,
    run_file,
    timescale_available,
)

log = structlog.get_logger("db.convert")


async def to_timescale(dsn: str, *, retention_days: int = 30) -> list[str]:
    """Convert the database to the `timescale` flavor; the versions converted (none if it was)."""
    async with locked(dsn) as conn:
        if not await timescale_available(conn):
            raise MigrationError(
                "--to-timescale: the timescaledb extension is not available on this server"
            )
        flavor = choose_flavor(await recorded_flavors(conn), timescale=True)
        converted: list[str] = []
        if flavor == "postgres":
            converted = await _convert(conn)
        else:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            await apply_pending(conn, "timescale")
        await apply_retention(conn, retention_days)
        log.info("migrations_current", flavor="timescale", converted=len(converted))
    return converted


async def _convert(conn: asyncpg.Connection) -> list[str]:
    await apply_pending(conn, "postgres")  # current in its own flavor first
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    plain = {migration.version: migration.path for migration in plan("postgres")}
    converted: list[str] = []
    for migration in plan("timescale"):
        if plain.get(migration.version) == migration.path:
            continue  # one file for both flavors: nothing differs
        undo = migration.path.with_name(f"{migration.version}.to_timescale.sql")
        if undo.is_file():
            await run_file(conn, Migration(migration.version, undo), record=None)
        await run_file(conn, migration, record=None)
        converted.append(migration.version)
        log.info("migration_converted", version=migration.version)
    async with conn.transaction():
        await conn.execute("UPDATE schema_migrations SET flavor = 'timescale'")
    return converted
