"""Past MAX_REQUESTS_IN_FLIGHT the gateway answers 503 at once instead of queueing more work."""

from __future__ import annotations

import asyncio
import time

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


def _reading(unit: str) -> dict[str, object]:
    return {
        "unit_id": unit, "site_id": "SITE-01", "timestamp": time.time_ns() // 1_000_000,
        "soc_percent": 50.0, "power_kw": 1.0, "voltage_v": 480.0, "current_a": 2.0,
        "temperature_c": 20.0, "state": "IDLE",
    }  # fmt: skip


@pytest.mark.parametrize("front", ["routes", "lane"])  # lane: only the middleware can answer
async def test_requests_over_the_in_flight_limit_get_503_with_retry_after(front: str) -> None:
    gate = asyncio.Event()

    async def publish(body: bytes) -> None:
        await gate.wait()  # the broker is slow: admitted requests stay in flight

    settings = GatewaySettings(
        device_api_keys=parse_api_keys("sim:secret-secret"), max_requests_in_flight=2
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
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gw", headers={"X-API-Key": "secret-secret"}
    ) as client:
        admitted = [
            asyncio.create_task(client.post("/v1/telemetry/megapack", json=_reading(f"MP-{i}")))
            for i in range(2)
        ]
        await asyncio.sleep(0.05)
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
        broken = await client.post("/v1/telemetry/ev", content=b"{")
        assert (broken.status_code, broken.json()["detail"][:19]) == (400, "body is not valid J")
    for lane in lanes.values():
        await lane.close()
