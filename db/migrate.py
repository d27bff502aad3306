"""Apply the numbered SQL migrations in order, once each, safely from several processes.

A migration is `NNNN_name.sql`, or one variant per flavor: `NNNN_name.timescale.sql` and
`NNNN_name.postgres.sql`. A new database takes the flavor `timescale` when the extension is
available, else `postgres`; the flavor is recorded with every applied version and kept from
then on, even if TimescaleDB appears later (`python -m db migrate --to-timescale` converts:
db/convert.py). A file whose first line is `-- migrate: no-transaction` runs statement by
statement (TimescaleDB continuous aggregates cannot be created inside a transaction), so it
must be re-runnable.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x4D454741  # "MEGA": one advisory lock for every migrating process
NO_TRANSACTION = "-- migrate: no-transaction"
# `.to_timescale.sql`: what converting a plain-PostgreSQL database undoes of the `.postgres`
# variant before its `.timescale` variant runs (db/convert.py); never part of a plan.
_FILE = re.compile(r"^(\d{4}_[a-z0-9_]+)(?:\.(timescale|postgres|to_timescale))?\.sql$")
FLAVORS = ("postgres", "timescale")
TELEMETRY_TABLES = ("megapack_telemetry", "ev_telemetry")

log = structlog.get_logger("db.migrate")


class MigrationError(Exception):
    """A migration cannot proceed; the message is one line naming the cause."""


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
        if variant == "to_timescale":
            continue
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


async def timescale_available(conn: asyncpg.Connection) -> bool:
    """Whether this server can create the TimescaleDB extension."""
    available = await conn.fetchval(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    return bool(available)


def choose_flavor(recorded: set[str], *, timescale: bool) -> str:
    """The recorded flavor of a migrated database; for a new one, what the server offers."""
    if len(recorded) > 1:
        raise MigrationError(f"schema_migrations records several flavors: {sorted(recorded)}")
    if recorded:
        (flavor,) = recorded
        if flavor not in FLAVORS:
            raise MigrationError(f"schema_migrations records an unknown flavor {flavor!r}")
        return flavor
    return "timescale" if timescale else "postgres"


async def recorded_flavors(conn: asyncpg.Connection) -> set[str]:
    """The flavors schema_migrations records (empty for a new database)."""
    return {
        row["flavor"] for row in await conn.fetch("SELECT DISTINCT flavor FROM schema_migrations")
    }


async def detect_flavor(conn: asyncpg.Connection) -> str:
    """The database's flavor: recorded, else detected (and the extension created for it)."""
    available = await timescale_available(conn)
    flavor = choose_flavor(await recorded_flavors(conn), timescale=available)
    if flavor == "timescale":
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    elif available:
        log.warning(
            "migrations_flavor_kept",
            flavor=flavor,
            hint="TimescaleDB is available: `python -m db migrate --to-timescale` converts",
        )
    return flavor


async def apply_retention(conn: asyncpg.Connection, retention_days: int) -> None:
    """Make the TimescaleDB retention policy of each telemetry table match RETENTION_DAYS."""
    for table in TELEMETRY_TABLES:
        await conn.execute("SELECT remove_retention_policy($1::regclass, if_exists => TRUE)", table)
        await conn.execute(
            "SELECT add_retention_policy($1::regclass, drop_after => make_interval(days => $2))",
            table,
            retention_days,
        )


@asynccontextmanager
async def locked(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding the migration lock, with the bookkeeping table in place."""
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY,
                   flavor text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        yield conn
    finally:
        await release(conn)


async def migrate(dsn: str, *, retention_days: int = 30, directory: Path = MIGRATIONS) -> list[str]:
    """Bring the database up to date in its flavor; returns the versions applied by this call."""
    async with locked(dsn) as conn:
        flavor = await detect_flavor(conn)
        applied_now = await apply_pending(conn, flavor, directory)
        if flavor == "timescale":
            await apply_retention(conn, retention_days)
        log.info("migrations_current", flavor=flavor, applied=len(applied_now))
    return applied_now


async def release(conn: asyncpg.Connection) -> None:
    """Give the migration lock back and close (quietly if the connection is already lost)."""
    with suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    await conn.close(timeout=5)


async def apply_pending(
    conn: asyncpg.Connection, flavor: str, directory: Path = MIGRATIONS
) -> list[str]:
    """Apply the flavor's migrations not yet recorded; the versions applied."""
    done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    applied_now: list[str] = []
    for migration in plan(flavor, directory):
        if migration.version in done:
            continue
        await run_file(conn, migration, record=flavor)
        applied_now.append(migration.version)
        log.info("migration_applied", version=migration.version, flavor=flavor)
    return applied_now


async def run_file(conn: asyncpg.Connection, migration: Migration, *, record: str | None) -> None:
    """Run one migration file and record it with the flavor `record` (in one transaction
    unless the file says otherwise); MigrationError naming the file if it fails."""
    insert = "INSERT INTO schema_migrations (version, flavor) VALUES ($1, $2)"
    try:
        if migration.transactional:
            async with conn.transaction():
                await conn.execute(migration.sql)
                if record is not None:
                    await conn.execute(insert, migration.version, record)
        else:
            for statement in statements(migration.sql):
                await conn.execute(statement)
            if record is not None:
                await conn.execute(insert, migration.version, record)
    except asyncpg.PostgresError as error:
        message = " ".join(str(error).split())
        raise MigrationError(f"{migration.path.name} failed: {message}") from None
