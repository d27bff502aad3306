"""Webhooks receive every alert event, signed, in order per alert, across restarts.

Real parts only: the monitoring service process, RabbitMQ (reached through a proxy the test
cuts, which is a broker outage as the service sees it), PostgreSQL, and two webhook receiver
processes, one of which fails its first answers and is restarted mid-run.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.integration.test_monitoring_report import add_megapack
from tests.integration.test_monitoring_service import OPS
from tests.support.databases import create_database, drop_database
from tests.support.proxy import TcpProxy
from tests.support.stack import Service, free_port, service_env

SECRET = "webhook-secret-for-tests"
RECEIVER = "tests.support.webhook_receiver"


def _receiver(log: Path, port: int, fail_first: int) -> Service:
    service = Service(RECEIVER, {}, "--port", str(port), "--log", str(log),
                      "--fail-first", str(fail_first), port=port)  # fmt: skip
    return service.start().wait_ready(30, path="/healthz")


@pytest.fixture
def database(database_url: str) -> Iterator[str]:
    url = asyncio.run(create_database(database_url))
    yield url
    asyncio.run(drop_database(url))


@pytest.fixture
def broker_proxy(amqp_url: str) -> Iterator[TcpProxy]:
    host_port = amqp_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    proxy = TcpProxy(host, int(port)).start()
    yield proxy
    proxy.close()


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    yield conn
    await conn.close()


def _received(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


async def _wait_for(what: str, check: object, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def _expected(db: asyncpg.Connection) -> dict[str, list[str]]:
    """Per alert, the event ids it must notify, in the order they happened."""
    rows = await db.fetch(
        "SELECT e.alert_id, e.event_uuid::text AS uuid FROM alert_events e "
        "WHERE NOT e.silenced ORDER BY e.event_id"
    )
    expected: dict[str, list[str]] = {}
    for row in rows:
        expected.setdefault(str(row["alert_id"]), []).append(row["uuid"])
    return expected


def _delivered(log: Path) -> dict[str, list[str]]:
    """Per alert, the event ids answered 2xx, in first-arrival order."""
    delivered: dict[str, list[str]] = {}
    for line in _received(log):
        if line["status"] != 200:
            continue
        body = json.loads(str(line["body"]))
        ids = delivered.setdefault(str(body["alert_id"]), [])
        if body["event_id"] not in ids:
            ids.append(body["event_id"])
    return delivered


# Three process restarts, a broker outage and retries with backoff: longer than most tests.
@pytest.mark.timeout(420)
async def test_every_event_reaches_every_webhook_across_restarts_in_order_and_signed(
    database: str, db: asyncpg.Connection, amqp_url: str, amqp_prefix: str,
    broker_proxy: TcpProxy, tmp_path: Path,
) -> None:  # fmt: skip
    logs = {"a": tmp_path / "a.jsonl", "b": tmp_path / "b.jsonl"}
    ports = {"a": free_port(), "b": free_port()}
    receiver_a = _receiver(logs["a"], ports["a"], fail_first=4)
    receiver_b = _receiver(logs["b"], ports["b"], fail_first=0)
    proxied = f"amqp://guest:guest@127.0.0.1:{broker_proxy.port}/"
    monitoring = Service("monitoring_service", service_env(
        database_url=database, amqp_url=proxied, prefix=f"{amqp_prefix}wh{uuid.uuid4().hex[:6]}.",
        MONITOR_INTERVAL_S="1", STALE_AFTER_S="600", GATEWAY_URL="http://127.0.0.1:1",
        ALERT_WEBHOOK_URLS=f"http://127.0.0.1:{ports['a']}/hook,http://127.0.0.1:{ports['b']}/",
        ALERT_WEBHOOK_SECRET=SECRET, ALERT_RULE_TUNING="megapack_temp.off_delay_s=0",
    ), port=free_port())  # fmt: skip
    monitoring.env["MONITORING_PORT"] = str(monitoring.port)
    services = [receiver_a, receiver_b, monitoring]
    try:
        monitoring.start().wait_ready(60)
        ops = httpx.AsyncClient(base_url=monitoring.url, headers=OPS, timeout=15)

        async def reading(unit: str, temperature_c: float, state: str = "IDLE") -> None:
            await add_megapack(db, unit_id=unit, site_id="S-WH", at=datetime.now(UTC), soc=60,
                               temperature_c=temperature_c, state=state)  # fmt: skip

        async def alert_of(unit: str, **expect: object) -> int:
            found: dict[str, int] = {}

            async def check() -> bool:
                row = await db.fetchrow(
                    "SELECT * FROM alerts WHERE unit_id = $1 ORDER BY alert_id DESC LIMIT 1", unit
                )
                if row is None or any(row[k] != v for k, v in expect.items()):
                    return False
                found["id"] = row["alert_id"]
                return True

            await _wait_for(f"alert of {unit} with {expect}", check)
            return found["id"]

        hot = await _start_episode(reading, alert_of)
        assert (await ops.post(f"/v1/alerts/{hot}/ack")).status_code == 200

        receiver_a.kill()  # the webhook goes away mid-run and comes back failing again
        await reading("WH-2", 25, state="FAULT")
        fault = await alert_of("WH-2", severity="critical")  # a dead webhook holds up no run
        receiver_a = services[0] = _receiver(logs["a"], ports["a"], fail_first=3)

        broker_proxy.cut()  # RabbitMQ away: events wait in the outbox
        await reading("WH-1", 20)
        await alert_of("WH-1", state="cleared")  # nor does a broker outage
        await asyncio.sleep(2)  # the outage lasts a while: several runs fail to publish
        broker_proxy.restore()

        monitoring.stop()  # the service restarts with deliveries in flight
        monitoring.start().wait_ready(60)
        shelved = await ops.post(f"/v1/alerts/{fault}/shelve",
                                 json={"for_s": 600, "reason": "field crew on site"})  # fmt: skip
        assert shelved.status_code == 200, shelved.text

        async def all_delivered() -> bool:
            expected = await _expected(db)
            return all(_delivered(log) == expected for log in logs.values())

        await _wait_for("every event at both webhooks", all_delivered, timeout_s=120)
        await ops.aclose()
    finally:
        for service in services:
            service.stop()

    expected = await _expected(db)
    assert sum(len(ids) for ids in expected.values()) == 6  # raised, severity, ack, clear, ...
    for name, log in logs.items():
        lines = _received(log)
        bodies: dict[str, str] = {}
        for line in lines:
            body = str(line["body"])
            mac = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
            assert line["signature"] == f"sha256={mac}", name
            event_id = json.loads(body)["event_id"]
            assert line["event_id"] == event_id
            assert bodies.setdefault(event_id, body) == body  # a duplicate is the same event
        assert _delivered(log) == expected  # every event, in order per alert
    # the restarted receiver failed its first three answers: those events were retried
    assert sum(1 for line in _received(logs["a"]) if line["status"] == 500) >= 3
    kinds = [json.loads(str(x["body"]))["event"] for x in _received(logs["b"])]
    assert {"raised", "severity_changed", "acknowledged", "cleared", "shelved"} <= set(kinds)


async def _start_episode(reading: object, alert_of: object) -> int:
    """WH-1 warms to a warning, then turns critical; the alert's id."""
    await reading("WH-1", 48)  # type: ignore[operator]
    alert_id: int = await alert_of("WH-1", severity="warning")  # type: ignore[operator]
    await reading("WH-1", 60)  # type: ignore[operator]
    await alert_of("WH-1", severity="critical")  # type: ignore[operator]
    return alert_id
