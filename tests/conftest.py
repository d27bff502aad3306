"""Session fixtures: a database and an AMQP prefix of this run's own, removed afterwards."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from db.migrate import migrate
from tests.support.databases import create_database, drop_database
from tests.support.stack import STARTED_SERVICES

BASE_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
RUN_ID = uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return AMQP_URL


@pytest.fixture(scope="session", autouse=True)
def remove_agent_journals() -> Iterator[None]:
    """The journals of the simulators this run started go with it (their logs stay)."""
    yield
    for service in STARTED_SERVICES:
        if service.module == "simulator":
            Path(service.env["SIM_AGENT_JOURNAL"]).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def amqp_prefix() -> Iterator[str]:
    """This run's prefix; every exchange and queue under it is deleted at the end."""
    prefix = f"test-{RUN_ID}."
    yield prefix
    asyncio.run(delete_broker_objects(prefix))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated database of this run's own, dropped at the end."""
    name = f"megapack_test_{RUN_ID}"
    url = f"{BASE_DATABASE_URL}/{name}"
    asyncio.run(migrate(url))
    yield url
    asyncio.run(drop_database(f"{BASE_DATABASE_URL}/{name}"))


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """A migrated, empty database of this test's own (for figures over the whole database)."""
    url = await create_database(database_url)
    yield url
    await drop_database(url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this run's database."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


def _broker_names(prefix: str) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for kind in ("queues", "exchanges"):
        listed = subprocess.run(
            ["rabbitmqctl", "-q", f"list_{kind}", "name", "--no-table-headers"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        names[kind] = [
            n.strip() for n in listed.stdout.splitlines() if n.strip().startswith(prefix)
        ]
    return names


async def delete_broker_objects(prefix: str) -> None:
    """Delete every queue and exchange whose name starts with `prefix`."""
    names = await asyncio.to_thread(_broker_names, prefix)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in names["queues"]:
            await channel.queue_delete(queue)
        for exchange in names["exchanges"]:
            await channel.exchange_delete(exchange)
