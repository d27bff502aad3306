"""Past MAX_REQUESTS_IN_FLIGHT the gateway answers 503 at once instead of queueing more work."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api_gateway.coalescer import Coalescer
from api_gateway.intake import TelemetryIntake
from api_gateway.lane import TelemetryLane
from api_gateway.ratelimit import RateLimiter
from api_gateway.routes import telemetry_router
from api_gateway.settings import GatewaySettings
from common.keys import parse_api_keys
from tests.support.waiting import until


def _reading(unit: str) -> dict[str, object]:
    return {
        "unit_id": unit, "site_id": "SITE-01", "timestamp": time.time_ns() // 1_000_000,
        "soc_percent": 50.0, "power_kw": 1.0, "voltage_v": 480.0, "current_a": 2.0,
        "temperature_c": 20.0, "state": "IDLE",
    }  # fmt: skip


@contextlib.asynccontextmanager
async def gateway(
    front: str, gate: asyncio.Event, **limits: float
) -> AsyncIterator[httpx.AsyncClient]:
    """The telemetry endpoints in front of a broker that confirms once `gate` is set."""

    async def publish(body: bytes) -> None:
        await gate.wait()  # the broker is slow: admitted requests stay in flight

    settings = GatewaySettings.model_validate(
        {"device_api_keys": parse_api_keys("sim:secret-secret"), **limits}
    )
    lanes = {
        kind: Coalescer(publish=publish, max_pending_readings=10_000) for kind in ("megapack", "ev")
    }
    for lane in lanes.values():
        lane.start()
    intake = TelemetryIntake(
        settings=settings,
        lanes=lanes,  # type: ignore[arg-type]
        limiter=RateLimiter(rate=0, burst_s=1),
    )
    app = FastAPI()
    if front == "routes":
        app.include_router(telemetry_router(intake))
    else:
        app.add_middleware(TelemetryLane, intake=intake)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gw",
        headers={"X-API-Key": "secret-secret"},
    ) as client:
        client.intake = intake  # type: ignore[attr-defined]
        yield client
    for lane in lanes.values():
        await lane.close()


@pytest.mark.parametrize("front", ["routes", "lane"])  # lane: only the middleware can answer
async def test_requests_over_the_in_flight_limit_get_503_with_retry_after(front: str) -> None:
    gate = asyncio.Event()
    async with gateway(front, gate, max_requests_in_flight=2) as client:
        intake: TelemetryIntake = client.intake  # type: ignore[attr-defined]
        admitted = [
            asyncio.create_task(client.post("/v1/telemetry/megapack", json=_reading(f"MP-{i}")))
            for i in range(2)
        ]
        await until(lambda: intake.requests_in_flight == 2)  # both wait for the broker
        refused = await client.post("/v1/telemetry/megapack", json=_reading("MP-9"))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        gate.set()
        assert [r.status_code for r in await asyncio.gather(*admitted)] == [202, 202]
        after = await client.post("/v1/telemetry/megapack", json=_reading("MP-10"))
        assert after.status_code == 202, "slots are given back when requests finish"
        assert after.json()["accepted"] == 1
        bad = await client.post("/v1/telemetry/ev", content=b"{", headers={"X-API-Key": "nope"})
        assert bad.status_code == 401
        assert bad.headers["WWW-Authenticate"] == "ApiKey"
        twice = await client.post(
            "/v1/telemetry/megapack",
            json=_reading("MP-11"),
            headers=[("X-API-Key", "secret-secret"), ("X-API-Key", "nope")],
        )
        assert twice.status_code == 202, "a repeated header: the first counts, as in Starlette"
        broken = await client.post("/v1/telemetry/ev", content=b"{")
        assert (broken.status_code, broken.json()["detail"][:19]) == (400, "body is not valid J")


async def test_bodies_over_the_bytes_in_flight_limit_get_503() -> None:
    gate = asyncio.Event()
    batch = {"readings": [_reading(f"MP-{i}") for i in range(8)]}  # about 1.6 kB
    async with gateway("lane", gate, max_bytes_in_flight=1024) as client:
        intake: TelemetryIntake = client.intake  # type: ignore[attr-defined]
        first = asyncio.create_task(client.post("/v1/telemetry/megapack", json=batch))
        await until(lambda: intake.bytes_in_flight >= 1024)  # its body is in, its publish waits
        second = await client.post("/v1/telemetry/megapack", json=_reading("MP-9"))
        assert (second.status_code, second.headers["Retry-After"]) == (503, "1")
        gate.set()
        assert (await first).status_code == 202
        again = await client.post("/v1/telemetry/megapack", json=_reading("MP-9"))
        assert again.status_code == 202, "the bytes are given back when a request finishes"


async def test_a_stalled_upload_holds_no_bytes() -> None:
    gate, stalled = asyncio.Event(), asyncio.Event()
    gate.set()
    async with gateway("lane", gate, max_bytes_in_flight=1024) as client:
        intake: TelemetryIntake = client.intake  # type: ignore[attr-defined]

        async def never() -> AsyncIterator[bytes]:
            await stalled.wait()  # declared 4 MiB, sends nothing
            yield b""

        hanging = [
            asyncio.create_task(
                intake.handle(
                    "megapack",
                    api_key="secret-secret",
                    content_type="application/json",
                    content_length=str(4 * 1024 * 1024),
                    chunks=never(),
                )
            )
            for _ in range(4)
        ]
        await until(lambda: intake.requests_in_flight == 4)  # all four wait for their bodies
        assert intake.bytes_in_flight == 0
        answer = await client.post("/v1/telemetry/megapack", json=_reading("MP-1"))
        assert answer.status_code == 202
        for task in hanging:
            task.cancel()


async def test_a_body_that_does_not_arrive_in_time_is_a_408() -> None:
    gate = asyncio.Event()
    gate.set()
    async with gateway("lane", gate, max_requests_in_flight=1, body_read_timeout_s=0.1) as client:
        intake: TelemetryIntake = client.intake  # type: ignore[attr-defined]

        async def never() -> AsyncIterator[bytes]:
            await asyncio.Event().wait()
            yield b""

        answer = await intake.handle(
            "megapack",
            api_key="secret-secret",
            content_type="application/json",
            content_length="100",
            chunks=never(),
        )
        assert (answer.status, answer.body["detail"]) == (
            408,
            "the body did not arrive within 0.1 s",
        )
        after = await client.post("/v1/telemetry/megapack", json=_reading("MP-1"))
        assert after.status_code == 202, "the slot was given back"
