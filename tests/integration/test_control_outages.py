"""The control service with its database or broker cut: 503 and nothing half-made, then recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.integration.test_control_api import JSON, add_unit, bind_command_sink, control_service
from tests.support.proxy import TcpProxy
from tests.support.stack import OPERATOR_SECRET, Service


def through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    return parts._replace(netloc=netloc).geturl()


def proxy_for(url: str, default_port: int) -> TcpProxy:
    parts = urlsplit(url)
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port).start()


@pytest.fixture(scope="module")
def proxied(stack_env: dict[str, str]) -> Iterator[tuple[Service, TcpProxy, TcpProxy]]:
    database = proxy_for(stack_env["DATABASE_URL"], 5432)
    broker = proxy_for(stack_env["AMQP_URL"], 5672)
    env = {
        **stack_env,
        "DATABASE_URL": through(stack_env["DATABASE_URL"], database),
        "AMQP_URL": through(stack_env["AMQP_URL"], broker),
    }
    bind_command_sink(stack_env["AMQP_URL"], stack_env["AMQP_PREFIX"])
    service = control_service(env).start().wait_ready()
    yield service, database, broker
    service.stop()
    database.close()
    broker.close()


async def wait_ready(http: httpx.AsyncClient, *, ready: bool, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while ((await http.get("/readyz")).status_code == 200) != ready:
        assert time.monotonic() < deadline, f"readyz never became ready={ready}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def ops(proxied: tuple[Service, TcpProxy, TcpProxy]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=proxied[0].url, headers={"X-API-Key": OPERATOR_SECRET, **JSON}, timeout=15
    ) as http:
        yield http


BODY = {"type": "set_mode", "params": {"mode": "STANDBY"}}


async def test_database_down_answers_503_then_recovers(
    proxied: tuple[Service, TcpProxy, TcpProxy], ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    _, database, _ = proxied
    unit = await add_unit(db)
    database.cut()
    try:
        down = await ops.post(f"/v1/units/{unit}/commands", json=BODY)
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"]
        assert (await ops.get(f"/v1/units/{unit}/commands")).status_code == 503
        ready = await ops.get("/readyz")
        assert (ready.status_code, ready.json()["checks"]["database"]) == (503, False)
    finally:
        database.restore()
    await wait_ready(ops, ready=True)
    up = await ops.post(f"/v1/units/{unit}/commands", json=BODY)
    assert up.status_code == 202, up.text
    assert await db.fetchval("SELECT count(*) FROM commands WHERE unit_id = $1", unit) == 1


async def test_broker_down_creates_nothing_then_recovers(
    proxied: tuple[Service, TcpProxy, TcpProxy], ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    _, _, broker = proxied
    unit = await add_unit(db)
    broker.cut()
    try:
        await wait_ready(ops, ready=False)
        down = await ops.post(f"/v1/units/{unit}/commands", json=BODY)
        assert down.status_code == 503, down.text
        assert "no command was created" in down.json()["detail"]
        assert await db.fetchval("SELECT count(*) FROM commands WHERE unit_id = $1", unit) == 0
    finally:
        broker.restore()
    await wait_ready(ops, ready=True)
    up = await ops.post(f"/v1/units/{unit}/commands", json=BODY)
    assert up.status_code == 202, up.text
    assert up.json()["status"] == "sent"
