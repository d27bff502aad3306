"""Databases of a test's own: migrated, empty, next to this run's, dropped afterwards."""

from __future__ import annotations

import uuid

import asyncpg

from db.migrate import migrate


async def create_database(database_url: str, prefix: str = "t") -> str:
    """A migrated, empty database on the same server as `database_url`; returns its URL."""
    url = f"{database_url.rsplit('/', 1)[0]}/{prefix}_{uuid.uuid4().hex[:12]}"
    await migrate(url)
    return url


async def drop_database(url: str) -> None:
    """Drop a database made by `create_database` (closing what is still connected)."""
    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
