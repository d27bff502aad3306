"""The running monitoring service's HTTP API: keys, alerts, units, telemetry, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.integration.test_monitoring_report import add_megapack
from tests.integration.test_monitoring_service import OPS
from tests.support.databases import create_database, drop_database
from tests.support.stack import DEVICE_SECRET, Service, free_port, service_env


@pytest.fixture(scope="module")
def service_database(database_url: str) -> Iterator[str]:
    url = asyncio.run(create_database(database_url))
    yield url
    asyncio.run(drop_database(url))


@pytest.fixture(scope="module")
def known_units(service_database: str) -> dict[str, object]:
    """A hot Megapack with a minute of readings, and a cleared alert, before the service starts."""
    now = datetime.now(UTC).replace(microsecond=0)

    async def write() -> int:
        conn = await asyncpg.connect(service_database)
        try:
            for second in range(90, -1, -1):
                await add_megapack(
                    conn, unit_id="MP-HOT", site_id="SITE-A", at=now - timedelta(seconds=second),
                    soc=60 - second / 10, temperature_c=56, state="DISCHARGING", power_kw=100,
                )  # fmt: skip
            await add_megapack(
                conn, unit_id="MP-OK", site_id="SITE-B", at=now, soc=70, temperature_c=20
            )
            cleared: int = await conn.fetchval(
                "INSERT INTO alerts (rule, unit_id, kind, site_id, severity, peak_severity, "
                "message, state, cleared_at) VALUES ('unit_stale', 'MP-OK', 'megapack', "
                "'SITE-B', 'warning', 'warning', 'old', 'cleared_unacknowledged', now()) "
                "RETURNING alert_id"
            )
            return cleared
        finally:
            await conn.close()

    cleared_alert = asyncio.run(write())
    return {"now": now, "cleared_alert": cleared_alert}


@pytest.fixture(scope="module")
def monitoring(
    service_database: str, known_units: dict[str, object], amqp_url: str, amqp_prefix: str
) -> Iterator[Service]:
    service = Service(
        "monitoring_service",
        service_env(
            database_url=service_database,
            amqp_url=amqp_url,
            prefix=amqp_prefix,
            MONITOR_INTERVAL_S="1",
            STALE_AFTER_S="600",
            GATEWAY_URL="http://127.0.0.1:1",
        ),
        port=free_port(),
    )
    service.env["MONITORING_PORT"] = str(service.port)
    service.start()
    try:
        service.wait_ready(60)  # a busy machine imports slowly; this only bounds the wait
    except AssertionError:
        service.stop()  # never leave the process behind
        raise
    yield service
    service.stop()


@pytest.fixture
async def ops(monitoring: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=monitoring.url, headers=OPS, timeout=10) as http:
        yield http


async def _active_alerts(ops: httpx.AsyncClient, unit_id: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        answer = await ops.get("/v1/alerts", params={"state": "active", "unit_id": unit_id})
        assert answer.status_code == 200, answer.text
        if answer.json()["items"]:
            return list(answer.json()["items"])
        await asyncio.sleep(0.2)
    raise AssertionError("no alert raised by the running service")


async def test_api_keys_401_without_or_unknown_and_403_for_a_device_key(
    monitoring: Service,
) -> None:
    async with httpx.AsyncClient(base_url=monitoring.url, timeout=10) as http:
        for path in ("/v1/monitoring/summary", "/v1/alerts", "/v1/units", "/v1/units/MP-HOT"):
            assert (await http.get(path)).status_code == 401
            assert (await http.get(path, headers={"X-API-Key": "nope-nope"})).status_code == 401
            device = await http.get(path, headers={"X-API-Key": DEVICE_SECRET})
            assert device.status_code == 403
            assert (await http.get(path, headers=OPS)).status_code == 200
        assert (await http.post("/v1/alerts/1/ack")).status_code == 401


async def test_the_running_service_raises_alerts_that_operators_acknowledge(
    ops: httpx.AsyncClient, known_units: dict[str, object]
) -> None:
    alerts = await _active_alerts(ops, "MP-HOT")
    assert [(alert["rule"], alert["severity"]) for alert in alerts] == [
        ("megapack_temp", "critical")  # one alert for the one condition, not one per level
    ]
    critical = alerts[0]
    acked = await ops.post(f"/v1/alerts/{critical['alert_id']}/ack")
    assert acked.status_code == 200
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == (
        "active_acknowledged",
        "ops",
    )
    listed = (await ops.get("/v1/alerts", params={"state": "active_acknowledged"})).json()
    assert [alert["alert_id"] for alert in listed["items"]] == [critical["alert_id"]]
    # a cleared alert stays listed until acknowledged, and may be acknowledged
    cleared_id = known_units["cleared_alert"]
    active_list = (await ops.get("/v1/alerts", params={"state": "active"})).json()["items"]
    assert cleared_id in [alert["alert_id"] for alert in active_list]
    acked_cleared = await ops.post(f"/v1/alerts/{cleared_id}/ack")
    assert (acked_cleared.status_code, acked_cleared.json()["state"]) == (200, "cleared")
    active_list = (await ops.get("/v1/alerts", params={"state": "active"})).json()["items"]
    assert cleared_id not in [alert["alert_id"] for alert in active_list]
    missing = await ops.post("/v1/alerts/999999999/ack")
    assert (missing.status_code, missing.json()["detail"]) == (404, "no such alert")
    first = await ops.get("/v1/alerts", params={"limit": 1})
    assert first.json()["next_cursor"] is not None
    second = await ops.get("/v1/alerts", params={"limit": 1, "cursor": first.json()["next_cursor"]})
    assert second.json()["items"][0]["alert_id"] < first.json()["items"][0]["alert_id"]
    summary = (await ops.get("/v1/monitoring/summary")).json()
    assert summary["units"]["total"] == 2
    assert summary["faults"]["open_alerts"]["critical"] == 1
    assert summary["soc"]["sites"][0]["net_power_mw"] == pytest.approx(0.1)


async def test_sites_roll_up_units_energy_power_and_their_worst_alert(
    ops: httpx.AsyncClient,
) -> None:
    await _active_alerts(ops, "MP-HOT")  # the rules have run
    answer = await ops.get("/v1/sites")
    assert answer.status_code == 200, answer.text
    sites = {site["site_id"]: site for site in answer.json()["items"]}
    assert list(sites) == ["SITE-A", "SITE-B"]
    hot, ok = sites["SITE-A"], sites["SITE-B"]
    assert (hot["units"], hot["reporting"], hot["stale"]) == (1, 1, 0)
    assert hot["energy_stored_mwh"] == pytest.approx(0.60 * 3854 / 1000)
    assert (hot["net_power_mw"], hot["discharging_mw"]) == (pytest.approx(0.1), pytest.approx(0.1))
    assert hot["worst_severity"] == "critical"
    assert hot["active_alerts"]["critical"] == 1
    assert ok["worst_severity"] is None  # its only alert is over
    assert ok["active_alerts"] == {"critical": 0, "warning": 0, "info": 0, "unacknowledged": 0}
    assert ok["soc_mean_percent"] == pytest.approx(70)


async def test_shelve_unshelve_assign_over_http_record_the_key_and_refuse_bad_input(
    ops: httpx.AsyncClient, service_database: str
) -> None:
    conn = await asyncpg.connect(service_database)
    try:
        alert_id = await conn.fetchval(
            "INSERT INTO alerts (rule, unit_id, kind, site_id, severity, peak_severity, message, "
            "state, cleared_at) VALUES ('megapack_offline', 'MP-GONE', 'megapack', 'SITE-C', "
            "'warning', 'warning', 'gone', 'cleared_unacknowledged', now()) RETURNING alert_id"
        )
    finally:
        await conn.close()
    base = f"/v1/alerts/{alert_id}"
    shelved = await ops.post(f"{base}/shelve", json={"for_s": 600, "reason": "decommissioned"})
    assert shelved.status_code == 200, shelved.text
    assert (shelved.json()["shelved"], shelved.json()["shelved_by"]) == (True, "ops")
    listed = await ops.get("/v1/alerts", params={"state": "active", "site": "SITE-C"})
    assert listed.json()["items"] == []
    listed = await ops.get("/v1/alerts", params={"site": "SITE-C", "shelved": "true"})
    assert [alert["alert_id"] for alert in listed.json()["items"]] == [alert_id]
    assigned = await ops.post(f"{base}/assign", json={"to": "alice"})
    assert (assigned.json()["assigned_to"], assigned.json()["assigned_by"]) == ("alice", "ops")
    unshelved = await ops.post(f"{base}/unshelve")
    assert (unshelved.status_code, unshelved.json()["shelved"]) == (200, False)
    detail = (await ops.get(base)).json()
    assert [(e["event"], e["by"]) for e in detail["events"]] == [
        ("shelved", "ops"), ("assigned", "ops"), ("unshelved", "ops"),
    ]  # fmt: skip
    bad = await ops.post(f"{base}/shelve", json={"for_s": 0, "why": "x"})
    assert bad.status_code == 422
    assert {tuple(item["loc"]) for item in bad.json()["detail"]} == {
        ("body", "for_s"), ("body", "reason"), ("body", "why"),
    }  # fmt: skip
    assert (await ops.post(f"{base}/assign", json={"to": ""})).status_code == 422
    nul = await ops.post(f"{base}/shelve", json={"for_s": 5, "reason": "a\u0000b"})
    assert (nul.status_code, nul.json()["detail"][0]["loc"]) == (422, ["body", "reason"])
    assert (await ops.post(f"{base}/shelve", content=b"{")).status_code == 422
    assert (await ops.get("/v1/alerts", params={"state": "open"})).status_code == 422
    assert (await ops.get("/v1/alerts", params={"rule": "megapack_temp_high"})).status_code == 422
    missing = await ops.post("/v1/alerts/999999999/shelve", json={"for_s": 1, "reason": "x"})
    assert (missing.status_code, missing.json()["detail"]) == (404, "no such alert")
    assert (await ops.get(base)).json()["events"] == detail["events"]  # refusals change nothing
    acked = await ops.post(f"{base}/ack")
    assert acked.json()["state"] == "cleared"
    refused = await ops.post(f"{base}/shelve", json={"for_s": 60, "reason": "again"})
    assert refused.status_code == 409


async def test_units_are_listed_filtered_paged_and_shown_with_the_latest_reading(
    ops: httpx.AsyncClient,
) -> None:
    everything = (await ops.get("/v1/units")).json()
    assert [unit["unit_id"] for unit in everything["items"]] == ["MP-HOT", "MP-OK"]
    by_site = (await ops.get("/v1/units", params={"site": "SITE-B"})).json()["items"]
    assert [unit["unit_id"] for unit in by_site] == ["MP-OK"]
    by_state = (await ops.get("/v1/units", params={"state": "DISCHARGING"})).json()["items"]
    assert [unit["unit_id"] for unit in by_state] == ["MP-HOT"]
    assert (await ops.get("/v1/units", params={"kind": "ev"})).json()["items"] == []
    page = (await ops.get("/v1/units", params={"limit": 1})).json()
    assert page["next_cursor"] == "MP-HOT"
    rest = (await ops.get("/v1/units", params={"limit": 1, "cursor": "MP-HOT"})).json()
    assert [unit["unit_id"] for unit in rest["items"]] == ["MP-OK"]
    detail = (await ops.get("/v1/units/MP-HOT")).json()
    assert detail["state"] == "DISCHARGING"
    assert detail["latest_reading"]["soc_percent"] == pytest.approx(60.0)
    assert (await ops.get("/v1/units/MP-NONE")).status_code == 404
    assert (await ops.get("/v1/units/bad id!")).status_code in (404, 422)


async def test_telemetry_raw_bucketed_and_bad_ranges(
    ops: httpx.AsyncClient, known_units: dict[str, object]
) -> None:
    now = known_units["now"]
    assert isinstance(now, datetime)
    window = {"from": (now - timedelta(seconds=90)).isoformat(), "to": now.isoformat()}
    raw = (await ops.get("/v1/units/MP-HOT/telemetry", params=window)).json()
    assert (raw["bucket"], len(raw["items"]), raw["truncated"]) == ("raw", 90, False)
    capped = (await ops.get("/v1/units/MP-HOT/telemetry", params={**window, "limit": 10})).json()
    assert (len(capped["items"]), capped["truncated"]) == (10, True)
    wide = {
        "from": (now - timedelta(minutes=5)).isoformat(),
        "to": (now + timedelta(minutes=1)).isoformat(),
    }
    bucketed = await ops.get("/v1/units/MP-HOT/telemetry", params={**wide, "bucket": "1m"})
    buckets = bucketed.json()["items"]
    # 91 readings one second apart, the last at `now`, spread over two or three minutes.
    assert sum(bucket["readings"] for bucket in buckets) == 91
    assert 2 <= len(buckets) <= 3
    assert all(bucket["temperature_c_max"] == 56 for bucket in buckets)
    bad = [
        {"from": now.isoformat(), "to": (now - timedelta(seconds=1)).isoformat()},
        {"from": (now - timedelta(days=2)).isoformat(), "to": now.isoformat()},
        {"bucket": "5m"},
        {"from": "yesterday"},
        {"form": now.isoformat()},  # a typo is refused, not ignored
    ]
    for params in bad:
        answer = await ops.get("/v1/units/MP-HOT/telemetry", params=params)
        assert answer.status_code == 422, params
    assert (await ops.get("/v1/units/MP-NONE/telemetry")).status_code == 404
    twice = await ops.get("/v1/units?cursor=false&cursor=false")  # which one was meant?
    assert (twice.status_code, twice.json()["detail"]) == (
        422,
        "query parameter(s) given more than once: cursor",
    )


async def test_metrics_carry_operational_figures_only_and_openapi_lists_the_endpoints(
    ops: httpx.AsyncClient,
) -> None:
    await _active_alerts(ops, "MP-HOT")  # at least one report has run
    metrics = (await ops.get("/metrics")).text
    assert 'fleet_units{status="total"} 2.0' in metrics
    assert "SITE-B" not in metrics  # no per-site labels, no business data without a key
    assert "fleet_soc_percent" not in metrics
    assert 'monitoring_runs_total{outcome="stored"}' in metrics
    paths = (await ops.get("/openapi.json")).json()["paths"]
    for path in (
        "/v1/monitoring/summary",
        "/v1/alerts",
        "/v1/alerts/{alert_id}",
        "/v1/alerts/{alert_id}/ack",
        "/v1/alerts/{alert_id}/shelve",
        "/v1/alerts/{alert_id}/unshelve",
        "/v1/alerts/{alert_id}/assign",
        "/v1/sites",
        "/v1/sites/{site_id}/telemetry",
        "/v1/units",
        "/v1/units/{unit_id}",
        "/v1/units/{unit_id}/telemetry",
    ):
        assert path in paths
