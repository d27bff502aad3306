"""A running gateway and ingestion consumer against this run's database and prefix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.databases import drop_database
from tests.support.kpi_profile import profile_database
from tests.support.stack import (
    DEVICE_SECRET,
    OPERATOR_SERVICES,
    Service,
    free_port,
    service_env,
)


@pytest.fixture(scope="session")
def stack_env(database_url: str, amqp_url: str, amqp_prefix: str) -> dict[str, str]:
    return service_env(database_url=database_url, amqp_url=amqp_url, prefix=amqp_prefix)


@pytest.fixture(scope="session")
def gateway(stack_env: dict[str, str]) -> Iterator[Service]:
    service = Service("api_gateway", stack_env, port=free_port())
    service.env["GATEWAY_PORT"] = str(service.port)
    service.start().wait_ready()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def ingestion(stack_env: dict[str, str], gateway: Service) -> Iterator[Service]:
    """The consumer; its Prometheus metrics (`service.url`) are the tests' barriers."""
    port = free_port()
    env = {**stack_env, "INGESTION_METRICS_PORT": str(port)}
    service = Service("ingestion_service", env, port=port).start()
    service.wait_ready(path="/metrics")
    yield service
    service.stop()


@pytest.fixture
async def client(gateway: Service, ingestion: Service) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the gateway with the unscoped device key."""
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"X-API-Key": DEVICE_SECRET}, timeout=15
    ) as http:
        yield http


@pytest.fixture(scope="module", params=sorted(OPERATOR_SERVICES))
def operator_service(
    request: pytest.FixtureRequest, stack_env: dict[str, str]
) -> Iterator[Service]:
    """The control and the monitoring service in turn, each on a port of its own."""
    module: str = request.param
    port = free_port()
    service = Service(module, {**stack_env, OPERATOR_SERVICES[module]: str(port)}, port=port)
    yield service.start().wait_ready()
    service.stop()


@pytest.fixture(scope="module")
def profile_url(database_url: str) -> Iterator[str]:
    """The crafted KPI telemetry (tests/support/kpi_profile.py) in a database of its own."""
    url = asyncio.run(profile_database(database_url.rsplit("/", 1)[0], timescale=False))
    yield url
    asyncio.run(drop_database(url))
