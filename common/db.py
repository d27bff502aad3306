"""The asyncpg pool, built once per service in its wiring code."""

from __future__ import annotations

import asyncpg

# Errors that mean the database is unreachable right now (retry later), not a bad query.
TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a connection pool; raises if the database cannot be reached."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, command_timeout=30)
    assert pool is not None
    return pool
