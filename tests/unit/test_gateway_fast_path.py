"""GATEWAY_FAST_PATH=0 takes the ASGI lane out: the FastAPI routes answer, with the same answers."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from api_gateway.app import create_app
from api_gateway.lane import TelemetryLane
from api_gateway.settings import GatewaySettings

KEY = {"X-API-Key": "secret-secret"}


def _app(fast_path: bool) -> Any:
    settings = GatewaySettings.model_validate(
        {"device_api_keys": "sim:secret-secret", "gateway_fast_path": fast_path}
    )
    return create_app(settings)


def _reading(**fields: Any) -> dict[str, Any]:
    return {
        "unit_id": "MP-1", "site_id": "SITE-01", "timestamp": time.time_ns() // 1_000_000,
        "soc_percent": 50.0, "power_kw": 1.0, "voltage_v": 480.0, "current_a": 2.0,
        "temperature_c": 20.0, "state": "IDLE", **fields,
    }  # fmt: skip


# Refusals only (no broker here): accepted readings in both modes are the integration
# suite's part, which `make test` runs a second time with GATEWAY_FAST_PATH=0.
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("no key", {"json": _reading(), "headers": {}}),
    ("unknown key", {"json": _reading(), "headers": {"X-API-Key": "nope-nope"}}),
    ("not json", {"content": b"{", "headers": {**KEY, "Content-Type": "application/json"}}),
    ("text/plain", {"content": b"a=b", "headers": {**KEY, "Content-Type": "text/plain"}}),
    ("bad field", {"json": _reading(soc_percent=101), "headers": KEY}),
    ("unknown field", {"json": _reading(colour="red"), "headers": KEY}),
    ("empty batch", {"json": {"readings": []}, "headers": KEY}),
]


def test_the_setting_reads_0_as_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVICE_API_KEYS", "sim:secret-secret")
    monkeypatch.setenv("GATEWAY_FAST_PATH", "0")
    assert GatewaySettings().gateway_fast_path is False
    monkeypatch.delenv("GATEWAY_FAST_PATH")
    assert GatewaySettings().gateway_fast_path is True


def test_off_means_no_lane_in_front_of_the_routes() -> None:
    assert [m.cls for m in _app(True).user_middleware] == [TelemetryLane]
    assert [m.cls for m in _app(False).user_middleware] == []


async def test_both_modes_give_the_same_answers() -> None:
    answers: dict[bool, list[tuple[int, Any]]] = {}
    for fast_path in (True, False):
        transport = httpx.ASGITransport(app=_app(fast_path))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            answers[fast_path] = []
            for _, request in REQUESTS:
                response = await client.post("/v1/telemetry/megapack", **request)
                answers[fast_path].append((response.status_code, response.json()))
    names = [name for name, _ in REQUESTS]
    assert dict(zip(names, answers[False], strict=True)) == dict(
        zip(names, answers[True], strict=True)
    )
    statuses = [status for status, _ in answers[True]]
    assert statuses == [401, 401, 400, 415, 422, 422, 422]
