"""Past MAX_REQUESTS_IN_FLIGHT the gateway answers 503 at once instead of queueing more work."""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi import FastAPI

from api_gateway.app import _request_error
from api_gateway.coalescer import Coalescer
from api_gateway.ingest import RequestError
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


async def test_requests_over_the_in_flight_limit_get_503_with_retry_after() -> None:
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
    app = FastAPI()
    app.include_router(
        telemetry_router(settings, lanes, RateLimiter(rate=0, burst_s=1))  # type: ignore[arg-type]
    )
    app.add_exception_handler(RequestError, _request_error)  # type: ignore[arg-type]
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
    for lane in lanes.values():
        await lane.close()
