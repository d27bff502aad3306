"""Apply the numbered SQL migrations in order, once each, safely from several processes.

A migration is `NNNN_name.sql`, or one variant per flavor: `NNNN_name.timescale.sql` and
`NNNN_name.postgres.sql`. The flavor is `timescale` when the extension is available. A file
whose first line is `-- migrate: no-transaction` runs statement by statement (TimescaleDB
continuous aggregates cannot be created inside a transaction), so it must be re-runnable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x4D454741  # "MEGA": one advisory lock for every migrating process
NO_TRANSACTION = "-- migrate: no-transaction"
_FILE = re.compile(r"^(\d{4}_[a-z0-9_]+)(?:\.(timescale|postgres))?\.sql$")
TELEMETRY_TABLES = ("megapack_telemetry", "ev_telemetry")

log = structlog.get_logger("db.migrate")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file chosen for the database's flavor."""

    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def transactional(self) -> bool:
        return not self.sql.startswith(NO_TRANSACTION)


def plan(flavor: str, directory: Path = MIGRATIONS) -> list[Migration]:
    """The migrations for a flavor, in version order."""
    chosen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise ValueError(f"migration file name not understood: {path.name}")
        version, variant = match.groups()
        if variant in (None, flavor):
            if version in chosen:
                raise ValueError(f"two migrations for {version} and flavor {flavor}")
            chosen[version] = path
    return [Migration(version, chosen[version]) for version in sorted(chosen)]


def statements(sql: str) -> list[str]:
    """Split a no-transaction file into statements (each ends with `;` at a line end)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*\n", body + "\n") if part.strip()]


async def ensure_database(dsn: str) -> None:
    """Create the database named in the DSN if it does not exist yet."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(dsn)
        name = parts.path.lstrip("/")
        admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
        try:
            await admin.execute(f'CREATE DATABASE "{name.replace(chr(34), "")}"')
            log.info("database_created", database=name)
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await admin.close()
    else:
        await conn.close()


async def detect_flavor(conn: asyncpg.Connection) -> str:
    """`timescale` (and make sure the extension is created) when available, else `postgres`."""
    available = await conn.fetchval(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    if not available:
        return "postgres"
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    return "timescale"


async def apply_retention(conn: asyncpg.Connection, retention_days: int) -> None:
    """Make the TimescaleDB retention policy of each telemetry table match RETENTION_DAYS."""
    for table in TELEMETRY_TABLES:
        await conn.execute("SELECT remove_retention_policy($1::regclass, if_exists => TRUE)", table)
        await conn.execute(
            "SELECT add_retention_policy($1::regclass, drop_after => make_interval(days => $2))",
            table,
            retention_days,
        )


async def migrate(dsn: str, *, retention_days: int = 30) -> list[str]:
    """Bring the database up to date; returns the versions applied by this call."""
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY,
                   flavor text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        flavor = await detect_flavor(conn)
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in plan(flavor):
            if migration.version in done:
                continue
            if migration.transactional:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await _record(conn, migration.version, flavor)
            else:
                for statement in statements(migration.sql):
                    await conn.execute(statement)
                await _record(conn, migration.version, flavor)
            applied_now.append(migration.version)
            log.info("migration_applied", version=migration.version, flavor=flavor)
        if flavor == "timescale":
            await apply_retention(conn, retention_days)
        log.info("migrations_current", flavor=flavor, applied=len(applied_now))
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        await conn.close()
    return applied_now


async def _record(conn: asyncpg.Connection, version: str, flavor: str) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, flavor) VALUES ($1, $2)", version, flavor
    )
