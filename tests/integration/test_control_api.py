"""The control API's contract against the real service, RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aio_pika
import asyncpg
import httpx
import pytest

from common.topology import Names, declare_exchange, quorum_arguments
from tests.support.readings import unique
from tests.support.stack import DEVICE_SECRET, OPERATOR_SECRET, Service, free_port

JSON = {"Content-Type": "application/json"}


async def add_unit(
    db: asyncpg.Connection,
    prefix: str = "MP",
    *,
    kind: str = "megapack",
    state: str = "IDLE",
    rated_power_kw: float | None = None,
) -> str:
    """A unit as the ingestion consumer would have registered it."""
    unit_id = unique(prefix)
    await db.execute(
        """INSERT INTO units (unit_id, kind, site_id, last_seen, last_state, last_soc_percent,
               rated_power_kw) VALUES ($1, $2, 'SITE-01', now(), $3, 50, $4)""",
        unit_id,
        kind,
        state,
        rated_power_kw,
    )
    return unit_id


def bind_command_sink(amqp_url: str, prefix: str) -> None:
    """A queue taking every command under `prefix`, as if every unit had an agent (a command
    no queue takes is `failed` at once; tests of that use a prefix of their own)."""

    async def bind() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            names = Names(prefix)
            commands = await declare_exchange(channel, names.commands)
            sink = await channel.declare_queue(
                f"{prefix}test.command-sink",
                durable=True,
                arguments={**quorum_arguments(), "x-message-ttl": 60_000},
            )
            await sink.bind(commands, routing_key="#")

    asyncio.run(bind())


def control_service(stack_env: dict[str, str], **extra: str) -> Service:
    """A control service with a fast sweeper."""
    service = Service("control_service", {**stack_env, **extra}, port=free_port())
    service.env.update(
        CONTROL_PORT=str(service.port),
        COMMAND_SWEEP_INTERVAL_S="0.2",
        COMMAND_EXPIRY_GRACE_S="0.3",
        COMMAND_REPUBLISH_AFTER_S="0.5",
    )
    return service


@pytest.fixture(scope="module")
def control(stack_env: dict[str, str]) -> Iterator[Service]:
    bind_command_sink(stack_env["AMQP_URL"], stack_env["AMQP_PREFIX"])
    service = control_service(stack_env).start().wait_ready()
    yield service
    assert service.stop() in (0, -15), service.output()  # uvicorn re-raises SIGTERM when done
    assert "control_service_stopped" in service.output()


@pytest.fixture
async def ops(control: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=control.url, headers={"X-API-Key": OPERATOR_SECRET, **JSON}, timeout=10
    ) as http:
        yield http


async def test_a_command_is_created_sent_and_recorded_with_who_asked(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    answer = await ops.post(
        f"/v1/units/{unit}/commands",
        json={"type": "set_mode", "params": {"mode": "DISCHARGING"}, "ttl_s": 20},
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "sent"
    assert [step["status"] for step in body["history"]] == ["pending", "sent"]
    row = await db.fetchrow(
        "SELECT * FROM commands WHERE command_id = $1::uuid", body["command_id"]
    )
    assert row is not None
    assert (row["requested_by"], row["status"], row["ttl_s"]) == ("ops", "sent", 20)
    assert row["created_at"] <= row["sent_at"]
    fetched = await ops.get(f"/v1/commands/{body['command_id']}")
    assert fetched.status_code == 200
    assert fetched.json()["params"] == {"mode": "DISCHARGING", "hold_s": 900}  # COMMAND_HOLD_S


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"type": "set_power", "params": {"power_kw": 1928}}, "rated power"),
        ({"type": "set_power", "params": {"power_kw": -2000}}, "rated power"),
        ({"type": "set_mode", "params": {"mode": "FAULT"}}, "mode"),
        ({"type": "launch", "params": {}}, "type"),
        ({"type": "set_mode", "params": {"mode": "IDLE"}, "ttl_s": 0}, "ttl_s"),
        ({"type": "set_mode", "params": {"mode": "IDLE"}, "ttl_s": 100_000}, "ttl_s"),
        ({"type": "set_soc_limits", "params": {"min_percent": 90, "max_percent": 10}}, "below"),
        ({"type": "reset_fault", "params": {}, "extra": 1}, "extra"),
    ],
)
async def test_bad_commands_are_422_and_nothing_is_stored(
    ops: httpx.AsyncClient, db: asyncpg.Connection, body: dict[str, object], detail: str
) -> None:
    unit = await add_unit(db)
    answer = await ops.post(f"/v1/units/{unit}/commands", json=body)
    assert answer.status_code == 422, answer.text
    assert detail in answer.text.lower() or detail in answer.text
    assert await db.fetchval("SELECT count(*) FROM commands WHERE unit_id = $1", unit) == 0


async def test_a_units_own_rated_power_bounds_set_power(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    small = await add_unit(db, rated_power_kw=500)
    refused = await ops.post(
        f"/v1/units/{small}/commands", json={"type": "set_power", "params": {"power_kw": 600}}
    )
    assert refused.status_code == 422
    accepted = await ops.post(
        f"/v1/units/{small}/commands", json={"type": "set_power", "params": {"power_kw": -500}}
    )
    assert accepted.status_code == 202, accepted.text


async def test_the_units_state_decides_409(ops: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    faulted, healthy = await add_unit(db, state="FAULT"), await add_unit(db)
    for body in (
        {"type": "set_power", "params": {"power_kw": 100}},
        {"type": "set_mode", "params": {"mode": "DISCHARGING"}},
    ):
        answer = await ops.post(f"/v1/units/{faulted}/commands", json=body)
        assert answer.status_code == 409, answer.text
        assert "FAULT" in answer.json()["detail"]
    assert (
        await ops.post(f"/v1/units/{healthy}/commands", json={"type": "reset_fault"})
    ).status_code == 409
    assert (
        await ops.post(f"/v1/units/{faulted}/commands", json={"type": "reset_fault"})
    ).status_code == 202
    wrong_kind = await ops.post(f"/v1/units/{healthy}/commands", json={"type": "start_charging"})
    assert wrong_kind.status_code == 409
    assert "ev command" in wrong_kind.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM commands WHERE unit_id = $1", healthy) == 0


async def test_unknown_units_and_commands_are_404(ops: httpx.AsyncClient) -> None:
    missing = await ops.post("/v1/units/MP-NOPE-404/commands", json={"type": "reset_fault"})
    assert missing.status_code == 404
    assert (await ops.get("/v1/commands/00000000-0000-4000-8000-000000000000")).status_code == 404
    assert (await ops.get("/v1/units/MP-NOPE-404/commands")).status_code == 404
    assert (await ops.get("/v1/commands/not-a-uuid")).status_code == 422


async def test_only_operator_keys_may_command(control: Service, db: asyncpg.Connection) -> None:
    unit = await add_unit(db)
    url = f"{control.url}/v1/units/{unit}/commands"
    body = {"type": "set_mode", "params": {"mode": "IDLE"}}
    async with httpx.AsyncClient(timeout=10) as http:
        device = await http.post(url, json=body, headers={"X-API-Key": DEVICE_SECRET})
        unknown = await http.post(url, json=body, headers={"X-API-Key": "not-a-key-at-all"})
        none = await http.post(url, json=body)
        reading = await http.get(url, headers={"X-API-Key": DEVICE_SECRET})
    assert (device.status_code, unknown.status_code, none.status_code) == (403, 401, 401)
    assert reading.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM commands WHERE unit_id = $1", unit) == 0


async def test_the_same_idempotency_key_gives_the_same_command(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    key = {"Idempotency-Key": unique("retry")}
    body = {"type": "set_power", "params": {"power_kw": -500}}
    first = await ops.post(f"/v1/units/{unit}/commands", json=body, headers=key)
    again = await ops.post(f"/v1/units/{unit}/commands", json=body, headers=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["command_id"] == again.json()["command_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    reused = await ops.post(
        f"/v1/units/{unit}/commands", json={**body, "params": {"power_kw": 10}}, headers=key
    )
    assert reused.status_code == 409
    assert "Idempotency-Key" in reused.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM commands WHERE unit_id = $1", unit) == 1


async def test_a_units_commands_are_paged_newest_first(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    unit = await add_unit(db)
    created = []
    for power_kw in (1, 2, 3, 4, 5):
        answer = await ops.post(
            f"/v1/units/{unit}/commands",
            json={"type": "set_power", "params": {"power_kw": power_kw}},
        )
        created.append(answer.json()["command_id"])
    seen: list[str] = []
    cursor: int | None = None
    while True:
        page = await ops.get(
            f"/v1/units/{unit}/commands",
            params={"limit": 2, **({"cursor": cursor} if cursor else {})},
        )
        assert page.status_code == 200, page.text
        seen += [item["command_id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))
    sent = await ops.get(f"/v1/units/{unit}/commands", params={"status": "completed"})
    assert sent.json()["items"] == []
    assert (await ops.get(f"/v1/units/{unit}/commands", params={"cursor": "zz"})).status_code == 422
    assert (await ops.get(f"/v1/units/{unit}/commands", params={"cursor": 1})).json()["items"] == []


async def test_health_readiness_metrics_and_documented_answers(
    ops: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    ready = await ops.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": True, "database": True, "answers": True}
    unit = await add_unit(db)
    answer = await ops.post(
        f"/v1/units/{unit}/commands", json={"type": "set_power", "params": {"power_kw": 10}}
    )
    assert answer.status_code == 202, answer.text  # counted in the metric below
    metrics = (await ops.get("/metrics")).text
    assert 'control_commands_total{status="202",type="set_power"}' in metrics
    spec = (await ops.get("/openapi.json")).json()
    post = spec["paths"]["/v1/units/{unit_id}/commands"]["post"]
    assert set(post["responses"]) >= {"202", "401", "403", "404", "409", "422", "503"}
    assert set(spec["paths"]["/v1/commands/{command_id}"]["get"]["responses"]) >= {"200", "404"}
