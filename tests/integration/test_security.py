"""Least privilege over HTTP: who may call what, rate limits, and secrets kept out of logs."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.readings import ev, megapack, now_ms, unique, wait_rows
from tests.support.stack import (
    DEVICE_SECRET,
    FLEET_SECRET,
    OPERATOR_SECRET,
    ROOT,
    SCOPED_SECRET,
    STARTED_SERVICES,
    Service,
    free_port,
)

OPEN_PATHS = {"/healthz", "/readyz", "/metrics"}
WRONG_KEYS = ("wrong-key-presented-7f3a9c", "x" * 4000, DEVICE_SECRET + "x", DEVICE_SECRET[:-1])


@pytest.fixture(scope="module")
def limited_gateway(stack_env: dict[str, str], ingestion: Service) -> Iterator[Service]:
    """A gateway allowing 0.2 readings/s per key with 50 s of burst (10 readings): after the
    burst the next reading waits 5 s, so a slow machine cannot refill the bucket in between."""
    port = free_port()
    env = {**stack_env, "RATE_LIMIT_READINGS_PER_S": "0.2", "RATE_LIMIT_BURST_S": "50"}
    service = Service("api_gateway", {**env, "GATEWAY_PORT": str(port)}, port=port)
    service.start().wait_ready()
    yield service
    service.stop()


def operations(base_url: str) -> list[tuple[str, str]]:
    """Every (method, path) of a service's OpenAPI, path parameters filled in."""
    spec = httpx.get(base_url + "/openapi.json", timeout=10).json()
    found: list[tuple[str, str]] = []
    for path, methods in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "MP-0001", path)
        found.extend((method.upper(), concrete) for method in methods if method != "parameters")
    return found


def _call(base_url: str, method: str, path: str, key: str | None) -> httpx.Response:
    headers = {} if key is None else {"X-API-Key": key}
    body: dict[str, Any] = {"type": "set_mode", "params": {"mode": "IDLE"}}
    if path.startswith("/v1/telemetry/"):
        body = megapack(unique("MPSEC"), now_ms())
    return httpx.request(
        method, base_url + path, headers=headers, json=body if method == "POST" else None
    )


def _protected(base_url: str) -> list[tuple[str, str]]:
    found = [op for op in operations(base_url) if op[1] not in OPEN_PATHS]
    assert found, f"no protected operation found at {base_url}"
    return found


def test_every_gateway_endpoint_refuses_missing_and_wrong_keys(gateway: Service) -> None:
    for method, path in _protected(gateway.url):
        for key in (None, *WRONG_KEYS):
            response = _call(gateway.url, method, path, key)
            assert response.status_code == 401, (method, path, key[:20] if key else key)


def test_every_operator_endpoint_refuses_missing_wrong_and_device_keys(
    operator_service: Service,
) -> None:
    for method, path in _protected(operator_service.url):
        for key in (None, *WRONG_KEYS):
            response = _call(operator_service.url, method, path, key)
            assert response.status_code == 401, (method, path, key[:20] if key else key)
        for device_key in (DEVICE_SECRET, SCOPED_SECRET, FLEET_SECRET):
            response = _call(operator_service.url, method, path, device_key)
            assert response.status_code == 403, (method, path, response.text)


def test_health_and_metrics_stay_open(gateway: Service, operator_service: Service) -> None:
    for service in (gateway, operator_service):
        for path in ("/healthz", "/metrics"):
            assert httpx.get(service.url + path).status_code == 200, (service.module, path)


def test_operator_keys_cannot_post_telemetry(gateway: Service) -> None:
    for path, reading in (
        ("/v1/telemetry/megapack", megapack(unique("MPOPS"), now_ms())),
        ("/v1/telemetry/ev", ev(unique("EVOPS"), now_ms())),
    ):
        response = httpx.post(
            gateway.url + path, json=reading, headers={"X-API-Key": OPERATOR_SECRET}
        )
        assert response.status_code == 401, response.text


async def test_scoped_keys_stay_in_their_site_or_fleet(
    gateway: Service, ingestion: Service, db: asyncpg.Connection
) -> None:
    unit = unique("MPSCOPE")
    inside = megapack(f"{unit}-in", now_ms(), site_id="SITE-01")
    outside = megapack(f"{unit}-out", now_ms(), site_id="SITE-02")
    vehicle = ev(f"{unit}-ev", now_ms(), fleet_id="FLEET-B")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:

        async def post(path: str, key: str, body: dict[str, Any]) -> int:
            response = await client.post(path, json=body, headers={"X-API-Key": key})
            return response.status_code

        mixed = {"readings": [inside, outside]}
        assert await post("/v1/telemetry/megapack", SCOPED_SECRET, mixed) == 403
        assert await post("/v1/telemetry/megapack", SCOPED_SECRET, outside) == 403
        assert await post("/v1/telemetry/ev", SCOPED_SECRET, vehicle) == 403  # site key, EV
        assert await post("/v1/telemetry/ev", FLEET_SECRET, vehicle) == 403  # other fleet
        assert await post("/v1/telemetry/megapack", FLEET_SECRET, inside) == 403  # fleet key
        assert await post("/v1/telemetry/megapack", SCOPED_SECRET, inside) == 202
        in_fleet = ev(f"{unit}-ev", now_ms(), fleet_id="FLEET-A")
        assert await post("/v1/telemetry/ev", FLEET_SECRET, in_fleet) == 202
    assert await wait_rows(db, "megapack_telemetry", f"{unit}-in", 1) == 1
    assert await wait_rows(db, "ev_telemetry", f"{unit}-ev", 1) == 1
    # The refused requests published nothing: only the accepted readings are there.
    assert (
        await db.fetchval(
            "SELECT count(*) FROM megapack_telemetry WHERE unit_id LIKE $1", unit + "%"
        )
        == 1
    )
    assert (
        await db.fetchval("SELECT count(*) FROM ev_telemetry WHERE vehicle_id LIKE $1", unit + "%")
        == 1
    )


async def test_rate_limit_answers_429_with_retry_after_per_key(
    limited_gateway: Service, db: asyncpg.Connection
) -> None:
    unit = unique("MPRATE")
    start = now_ms() - 10_000
    burst = {"readings": [megapack(unit, start + i) for i in range(10)]}
    over = megapack(f"{unit}-over", start)
    async with httpx.AsyncClient(base_url=limited_gateway.url, timeout=15) as client:
        first = await client.post(
            "/v1/telemetry/megapack", json=burst, headers={"X-API-Key": DEVICE_SECRET}
        )
        refused = await client.post(
            "/v1/telemetry/megapack", json=over, headers={"X-API-Key": DEVICE_SECRET}
        )
        other_key = await client.post(
            "/v1/telemetry/megapack",
            json=megapack(f"{unit}-other", start),
            headers={"X-API-Key": SCOPED_SECRET},
        )
    assert first.status_code == 202, first.text
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert other_key.status_code == 202, other_key.text  # buckets are per key
    assert await wait_rows(db, "megapack_telemetry", f"{unit}-other", 1) == 1
    assert await wait_rows(db, "megapack_telemetry", unit, 11) == 11
    # The refused reading never reached the broker.
    assert (
        await db.fetchval(
            "SELECT count(*) FROM megapack_telemetry WHERE unit_id = $1", f"{unit}-over"
        )
        == 0
    )


def test_bad_key_configuration_fails_in_one_line_without_the_secret() -> None:
    secret = "leaky-secret-value-31337"
    env = {"DEVICE_API_KEYS": f"sim:{secret}:planet=MARS", "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "api_gateway"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert "DEVICE_API_KEYS" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert secret not in run.stderr + run.stdout


async def test_secrets_never_appear_in_service_logs(
    gateway: Service, ingestion: Service, operator_service: Service, db: asyncpg.Connection
) -> None:
    """Every secret, right and wrong, is presented here to each service; none is logged."""
    secrets = (DEVICE_SECRET, SCOPED_SECRET, FLEET_SECRET, OPERATOR_SECRET, *WRONG_KEYS[:2])
    unit = unique("MPLOG")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:
        for n, secret in enumerate(secrets):
            reading = megapack(f"{unit}-{n}", now_ms(), site_id="SITE-01")
            await client.post("/v1/telemetry/megapack", json=reading, headers={"X-API-Key": secret})
    # The barrier: the consumer has stored what the device keys sent (their batches carry
    # the key's name), so it handled them; the other secrets were refused by the gateway.
    assert await wait_rows(db, "megapack_telemetry", unit, 2) == 2  # DEVICE_ and SCOPED_SECRET
    for method, endpoint in _protected(operator_service.url):
        for secret in secrets:
            _call(operator_service.url, method, endpoint, secret)
    services = {gateway, ingestion, operator_service, *STARTED_SERVICES}
    logs = {s.log_path: s.log_path.read_text(errors="replace") for s in services}
    for service in (gateway, ingestion, operator_service):
        assert logs[service.log_path].strip(), f"{service.module} logged nothing"
    for log_path, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"a secret ({secret[:4]}...) is logged in {log_path.name}"
