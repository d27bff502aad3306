"""The simulator's unit agent on the real broker, its effects seen in the real database."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import pytest

from common.topology import Names
from tests.support.proxy import TcpProxy
from tests.support.sim_agent import Operator, command, names_of
from tests.support.stack import DEVICE_SECRET, Service

ID = f"a{uuid.uuid4().hex[:6]}-"
MP1, MP2, MP3, EV1 = f"{ID}MP-0001", f"{ID}MP-0002", f"{ID}MP-0003", f"{ID}EV-0001"
MP4 = f"{ID}MP-0004"  # faulted like MP2, for the test that resets it (MP2 stays in FAULT)


@pytest.fixture(scope="module")
def agent_names(amqp_prefix: str) -> Names:
    return Names(f"{amqp_prefix}agent-{uuid.uuid4().hex[:6]}.")


def simulator_env(gateway: Service, amqp_url: str, names: Names, agent_id: str) -> dict[str, str]:
    return {
        "MEGAPACK_COUNT": "4",
        "EV_COUNT": "1",
        "SITE_COUNT": "1",
        "TELEMETRY_INTERVAL_S": "0.25",
        "SIM_SEED": "5",
        "FAULT_RATE": "0",
        "SIM_NOISE_PERCENT": "0",  # setpoints read back exactly: the tests compare kW
        "GATEWAY_URL": gateway.url,
        "DEVICE_API_KEY": DEVICE_SECRET,
        "AMQP_URL": amqp_url,
        "AMQP_PREFIX": names.prefix,
        "SIM_AGENT_ID": agent_id,
        "SIM_ID_PREFIX": ID,
        "SIM_FAULTED_UNITS": f"{MP2},{MP4}",
        "LOG_FORMAT": "json",
    }


@pytest.fixture(scope="module")
def simulator(
    gateway: Service, ingestion: Service, amqp_url: str, agent_names: Names
) -> Iterator[Service]:
    service = Service("simulator", simulator_env(gateway, amqp_url, agent_names, "sim-it"))
    service.start()
    yield service
    service.stop()


@pytest.fixture
async def operator(
    amqp_url: str, agent_names: Names, simulator: Service
) -> AsyncIterator[Operator]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        started = await Operator(channel, agent_names).start()
        await logged(simulator, '"agent_consuming"')
        yield started


def full_log(service: Service) -> str:
    return service.log_path.read_text(errors="replace") if service.log_path.exists() else ""


def events(service: Service, event: str) -> list[dict[str, Any]]:
    """The JSON log lines of one event."""
    lines = full_log(service).splitlines()
    return [json.loads(line) for line in lines if f'"event": "{event}"' in line]


async def logged(service: Service, text: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in full_log(service):
        service.assert_running()
        assert time.monotonic() < deadline, f"{text} never logged:\n{service.output()}"
        await asyncio.sleep(0.1)


async def latest(db: asyncpg.Connection, unit_id: str, after_ms: int) -> asyncpg.Record:
    """The newest stored reading of a unit taken after `after_ms` (waits for it)."""
    deadline = time.monotonic() + 15
    while True:
        row = await db.fetchrow(
            "SELECT state, power_kw, fault_codes FROM megapack_telemetry WHERE unit_id = $1"
            " AND time > to_timestamp($2 / 1000.0) ORDER BY time DESC LIMIT 1",
            unit_id,
            after_ms,
        )
        if row is not None:
            return row
        assert time.monotonic() < deadline, f"no reading of {unit_id} stored"
        await asyncio.sleep(0.1)


async def test_an_expired_command_is_rejected_and_not_executed(operator: Operator) -> None:
    stale = command(MP1, "set_mode", {"mode": "MAINTENANCE"}, ttl_s=-5)
    await operator.send(stale)
    acks = await operator.wait(stale.command_id, "REJECTED")
    assert names_of(acks) == ["REJECTED"]
    assert acks[0].reason == "expired"
    assert acks[0].agent_id == "sim-it"


async def test_a_command_delivered_twice_is_executed_once(
    operator: Operator, db: asyncpg.Connection
) -> None:
    first = command(MP1, "set_power", {"power_kw": -300})
    await operator.send(first)
    answered = await operator.wait(first.command_id, "COMPLETED")
    second = command(MP1, "set_power", {"power_kw": 200})
    await operator.send(second)
    await operator.wait(second.command_id, "COMPLETED")
    await operator.send(first)  # redelivered, after a newer command
    # The barrier: the agent has processed the second delivery (it answered it again) ...
    acks = await operator.wait(first.command_id, "COMPLETED", count=2)
    replayed_at = time.time_ns() // 1_000_000
    assert len(acks) == 2 * len(answered)
    # ... with its recorded answers, stamped when it ran (a re-run would stamp them anew) ...
    assert [(a.status, a.at_ms) for a in acks[len(answered) :]] == [
        (a.status, a.at_ms) for a in answered
    ]
    # ... and the unit's next reading still holds the newer setpoint, not the replayed one.
    row = await latest(db, MP1, replayed_at)
    assert row["state"] == "DISCHARGING"
    assert row["power_kw"] == pytest.approx(200, abs=2)


@pytest.mark.parametrize(
    ("unit_id", "type_", "params", "reason"),
    [
        (MP1, "set_power", {"power_kw": 50_000}, "rated power"),
        (MP1, "reset_fault", {}, "not in FAULT"),
        (MP2, "set_mode", {"mode": "DISCHARGING"}, "FAULT"),
        (MP1, "set_soc_limits", {"min_percent": 90, "max_percent": 10}, "bad params"),
    ],
)
async def test_the_unit_rejects_with_its_reason(
    operator: Operator, unit_id: str, type_: str, params: dict[str, object], reason: str
) -> None:
    refused = command(unit_id, type_, params)
    await operator.send(refused)
    acks = await operator.wait(refused.command_id, "REJECTED")
    assert reason in acks[-1].reason


async def test_a_command_for_a_unit_it_does_not_play_is_rejected(
    operator: Operator, agent_names: Names
) -> None:
    stranger = command(f"{ID}MP-0999", "set_mode", {"mode": "IDLE"})
    await operator.send(stranger, to_queue=agent_names.agent_queue("sim-it"))
    acks = await operator.wait(stranger.command_id, "REJECTED")
    assert "unknown unit" in acks[-1].reason


async def test_reset_fault_and_set_mode_show_in_the_next_telemetry(
    operator: Operator, db: asyncpg.Connection
) -> None:
    reset = command(MP4, "reset_fault")
    await operator.send(reset)
    acks = await operator.wait(reset.command_id, "COMPLETED")
    assert names_of(acks) == ["ACKNOWLEDGED", "COMPLETED"]
    row = await latest(db, MP4, acks[-1].at_ms)
    assert row["state"] != "FAULT"
    assert row["fault_codes"] == []
    discharge = command(MP3, "set_mode", {"mode": "DISCHARGING"})
    await operator.send(discharge)
    done = await operator.wait(discharge.command_id, "COMPLETED")
    row = await latest(db, MP3, done[-1].at_ms)
    assert row["state"] == "DISCHARGING"
    assert row["power_kw"] > 0


async def test_without_a_broker_it_keeps_sending_and_connects_when_it_comes_back(
    gateway: Service, amqp_url: str, agent_names: Names
) -> None:
    target = urlsplit(amqp_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672).start()
    proxy.cut()
    via_proxy = amqp_url.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    env = simulator_env(gateway, via_proxy, agent_names, "sim-outage")
    env.update(
        SIM_ID_PREFIX=f"o{uuid.uuid4().hex[:6]}-", SIM_FAULTED_UNITS="", STATS_INTERVAL_S="0.5"
    )
    service = Service("simulator", env).start()
    try:
        await logged(service, '"broker_connect_failed"')
        deadline = time.monotonic() + 15
        while not any(line["accepted_per_s"] > 0 for line in events(service, "sim_stats")):
            assert time.monotonic() < deadline, full_log(service)
            await asyncio.sleep(0.1)
        assert not events(service, "agent_consuming")  # telemetry flows, the broker is away
        proxy.restore()
        await logged(service, '"agent_consuming"')
    finally:
        assert service.stop() == 0
        proxy.close()


async def test_after_a_restart_a_redelivered_command_is_answered_not_run_again(
    gateway: Service, amqp_url: str, agent_names: Names, operator: Operator
) -> None:
    prefix = f"j{uuid.uuid4().hex[:6]}-"
    env = simulator_env(gateway, amqp_url, agent_names, "sim-journal")
    env.update(SIM_ID_PREFIX=prefix, SIM_FAULTED_UNITS="")
    service = Service("simulator", env).start()
    try:
        await logged(service, '"agent_consuming"')
        charge = command(
            f"{prefix}MP-0001", "set_soc_limits", {"min_percent": 5, "max_percent": 90}
        )
        await operator.send(charge)
        before = await operator.wait(charge.command_id, "COMPLETED")
        service.kill()  # all it knew in memory is gone
        service.start()
        deadline = time.monotonic() + 20
        while len(events(service, "agent_consuming")) < 2:
            service.assert_running()
            assert time.monotonic() < deadline, service.output()
            await asyncio.sleep(0.1)
        assert [e["commands"] for e in events(service, "agent_journal_loaded")] == [0, 1]
        await operator.send(charge)  # the delivery a killed agent never acked comes again
        after = await operator.wait(charge.command_id, "COMPLETED", count=2)
        assert len(after) == 2 * len(before)
        assert [(a.status, a.at_ms) for a in after[len(before) :]] == [
            (a.status, a.at_ms) for a in before
        ]  # the same answers, stamped when it ran: it did not run again
    finally:
        service.stop()


async def test_the_real_agent_refuses_a_command_older_than_one_it_carried_out(
    operator: Operator,
) -> None:
    newer = command(MP3, "set_soc_limits", {"min_percent": 20, "max_percent": 80})
    older = command(MP3, "set_soc_limits", {"min_percent": 30, "max_percent": 70})
    newer.seq, older.seq = 2_000_000_002, 2_000_000_001  # created in this order, arrives reversed
    await operator.send(newer)
    await operator.wait(newer.command_id, "COMPLETED")
    await operator.send(older)
    acks = await operator.wait(older.command_id, "SUPERSEDED")
    assert names_of(acks) == ["SUPERSEDED"]
    assert "seq 2000000002" in acks[0].reason
