"""`python -m db migrate [--to-timescale]`: create the database if missing, apply migrations."""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from common.logging import configure_logging
from common.settings import BaseServiceSettings, load_settings
from db.convert import to_timescale
from db.migrate import MigrationError, migrate


def main() -> None:
    """Parse the command line and run it; any failure is one line on stderr, exit status 1."""
    parser = argparse.ArgumentParser(
        prog="python -m db", description="Database schema tools (reads DATABASE_URL)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "migrate",
        help="create the database if missing, apply pending migrations",
        description=(
            "Apply pending migrations in the flavor the database was first migrated with "
            "(timescale or postgres; a new database: timescale where the extension exists)."
        ),
    )
    command.add_argument(
        "--to-timescale",
        action="store_true",
        help="convert a database migrated on plain PostgreSQL to TimescaleDB, keeping its data",
    )
    args = parser.parse_args()
    settings = load_settings(BaseServiceSettings, "db")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    run = to_timescale if args.to_timescale else migrate
    try:
        asyncio.run(run(settings.database_url, retention_days=settings.retention_days))
    except MigrationError as error:
        raise SystemExit(f"db: migration failed: {error}") from None
    except asyncpg.PostgresError as error:
        cause = " ".join(str(error).split())
        raise SystemExit(f"db: migration failed: {type(error).__name__}: {cause}") from None
    except (TimeoutError, OSError, asyncpg.InterfaceError) as error:
        raise SystemExit(f"db: cannot reach the database: {error}") from None
    except ValueError as error:  # a migration file name not understood
        raise SystemExit(f"db: migration failed: {error}") from None


if __name__ == "__main__":
    main()
