"""`python -m db migrate`: create the database if missing and apply every migration."""

from __future__ import annotations

import argparse
import asyncio

from common.logging import configure_logging
from common.settings import BaseServiceSettings, load_settings
from db.migrate import migrate


def main() -> None:
    """Parse the command line and run it."""
    parser = argparse.ArgumentParser(
        prog="python -m db", description="Database schema tools (reads DATABASE_URL)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create the database if missing, apply pending migrations")
    parser.parse_args()
    settings = load_settings(BaseServiceSettings, "db")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    try:
        asyncio.run(migrate(settings.database_url, retention_days=settings.retention_days))
    except (TimeoutError, OSError) as error:
        raise SystemExit(f"db: cannot reach the database: {error}") from None


if __name__ == "__main__":
    main()
