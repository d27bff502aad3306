"""`GET /v1/kpis` over HTTP (the router in an app of its own, on the real database): keys,
JSON and CSV shapes, and hostile queries answered 4xx naming the problem."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from common.db import TRANSIENT_DB_ERRORS
from common.http import install_error_handlers
from monitoring_service.kpi_api import CSV_COLUMNS, kpi_router
from monitoring_service.settings import MonitoringSettings
from tests.support.energy import rte_percent_of
from tests.support.kpi_profile import SITE

OPS = {"X-API-Key": "ops-kpi-secret"}
DAY_RANGE = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-03T00:00:00Z"}


@pytest.fixture
async def http(profile_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = MonitoringSettings(
        database_url=profile_url,
        operator_api_keys="ops:ops-kpi-secret",
        device_api_keys="sim:dev-kpi-secret",
        stale_after_s=30.0,
        telemetry_interval_s=10.0,
    )
    app = FastAPI()
    app.include_router(kpi_router(settings))
    install_error_handlers(app, transient=TRANSIENT_DB_ERRORS)
    pool = await asyncpg.create_pool(profile_url, min_size=1, max_size=2)
    app.state.pool = pool
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kpi") as client:
        yield client
    await pool.close()


async def test_json_answer(http: httpx.AsyncClient) -> None:
    answer = await http.get(
        "/v1/kpis", params={"scope": "site", "id": SITE, "bucket": "1d", **DAY_RANGE}, headers=OPS
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["scope"], body["id"], body["bucket"], body["units"]) == ("site", SITE, "1d", 2)
    assert (body["from"], body["to"]) == ("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z")
    assert body["source"] == "raw"
    (day,) = body["items"]
    assert day["energy_charged_kwh"] == pytest.approx(530.0)
    assert day["energy_discharged_kwh"] == pytest.approx(400.0)
    assert day["rte_percent"] == pytest.approx(rte_percent_of(530.0, 400.0, 39.36))
    assert day["gap_count"] == 3
    assert day["gaps"][0]["unit_id"] == "KPI-K1"


async def test_range_is_widened_to_whole_buckets(http: httpx.AsyncClient) -> None:
    params = {
        "scope": "unit",
        "id": "KPI-K1",
        "from": "2026-11-02T00:30:00Z",
        "to": "2026-11-02T02:10:00+01:00",
    }
    body = (await http.get("/v1/kpis", params=params, headers=OPS)).json()
    # 02:10+01:00 is 01:10Z: hours 00:00, 01:00.
    assert (body["from"], body["to"]) == ("2026-11-02T00:00:00Z", "2026-11-02T02:00:00Z")
    assert [item["energy_charged_kwh"] for item in body["items"]] == [
        pytest.approx(500.0),
        pytest.approx(0.0),
    ]


async def test_csv_answer(http: httpx.AsyncClient) -> None:
    params = {
        "scope": "site",
        "id": SITE,
        "bucket": "1h",
        "from": DAY_RANGE["from"],
        "to": "2026-11-02T05:00:00Z",
    }
    answer = await http.get("/v1/kpis", params=params, headers={**OPS, "Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 5
    assert float(rows[0]["energy_charged_kwh"]) == pytest.approx(506.0)
    assert float(rows[2]["time_in_state_fault_s"]) == pytest.approx(3600.0)
    assert rows[4]["gap_count"] == "1"


@pytest.mark.parametrize(
    ("params", "status", "named"),
    [
        (
            {
                "scope": "site",
                "id": SITE,
                "from": "2026-11-03T00:00:00Z",
                "to": "2026-11-02T00:00:00Z",
            },
            422,
            "`from` must be before `to`",
        ),
        (
            {
                "scope": "site",
                "id": SITE,
                "from": "2026-11-02T00:00:00Z",
                "to": "2026-11-02T00:00:00Z",
            },
            422,
            "`from` must be before `to`",
        ),
        (
            {
                "scope": "site",
                "id": SITE,
                "bucket": "1d",
                "from": "2025-01-01T00:00:00Z",
                "to": "2026-11-02T00:00:00Z",
            },
            422,
            "at most 366 days",
        ),
        (
            {
                "scope": "site",
                "id": SITE,
                "bucket": "1h",
                "from": "2026-09-01T00:00:00Z",
                "to": "2026-11-02T00:00:00Z",
            },
            422,
            "at most 31 days",
        ),
        ({"scope": "galaxy", "id": SITE}, 422, "scope"),
        ({"scope": "site", "id": SITE, "bucket": "5m"}, 422, "bucket"),
        ({"scope": "site", "id": "SITE-NONE"}, 404, "unknown site 'SITE-NONE'"),
        ({"scope": "unit", "id": "MP-NONE"}, 404, "unknown unit 'MP-NONE'"),
        ({"scope": "unit"}, 422, "`id` is required with scope=unit"),
        ({"scope": "fleet", "id": SITE}, 422, "`id` is not taken with scope=fleet"),
        ({"scope": "site", "id": "bad id!"}, 422, "id"),
        ({"scope": "site", "id": SITE, "from": "yesterday"}, 422, "from"),
        ({"scope": "site", "id": SITE, "colour": "red"}, 422, "colour"),
    ],
)
async def test_hostile_queries(
    http: httpx.AsyncClient, params: dict[str, str], status: int, named: str
) -> None:
    answer = await http.get("/v1/kpis", params=params, headers=OPS)
    assert answer.status_code == status, answer.text
    assert named in str(answer.json()["detail"])


async def test_keys(http: httpx.AsyncClient) -> None:
    params = {"scope": "site", "id": SITE}
    assert (await http.get("/v1/kpis", params=params)).status_code == 401
    device = {"X-API-Key": "dev-kpi-secret"}
    assert (await http.get("/v1/kpis", params=params, headers=device)).status_code == 403
