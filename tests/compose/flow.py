"""Checks of the running flow: monitoring, a command, the broker UI, restarts, teardown."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.compose.checks import (
    CONTROL,
    FINAL,
    MANAGEMENT,
    MONITORING,
    Context,
    all_acknowledged_stored,
    psql,
    wait_for,
)
from tests.compose.engine import Failure, run

# A barrier's ceiling, not a wait: on a loaded 2-core host a broker's restart alone has
# taken over three minutes before its port opened.
RESUME_TIMEOUT_S = 600


def monitoring_reports(ctx: Context) -> str:
    """The report is in the service's log; the summary answers the generated operator key only."""
    monitoring = ctx.project.container("monitoring")

    def reported() -> bool:
        logs = run(["docker", "logs", monitoring]).stdout
        return any('"generated_at"' in line and '"ingest"' in line for line in logs.splitlines())

    wait_for("a monitoring report in the log", reported, timeout_s=60)
    url = f"{MONITORING}/v1/monitoring/summary"
    operator = {"X-API-Key": ctx.secrets["OPERATOR_API_KEY"]}
    summary = httpx.get(url, headers=operator, timeout=10)
    if summary.status_code != 200 or "ingest" not in summary.json():
        raise Failure(f"summary answered {summary.status_code}: {summary.text[:300]}")
    device = httpx.get(url, headers={"X-API-Key": ctx.secrets["DEVICE_API_KEY"]}, timeout=10)
    anonymous = httpx.get(url, timeout=10)
    if (device.status_code, anonymous.status_code) != (403, 401):
        raise Failure(f"summary: device key {device.status_code}, no key {anonymous.status_code}")
    return "report logged; summary 200 (operator), 403 (device key), 401 (none)"


def command_completes(ctx: Context) -> str:
    """A command to MP-0001 reaches `completed` (the simulator's unit agent executes it)."""
    headers = {"X-API-Key": ctx.secrets["OPERATOR_API_KEY"]}
    limits = {"min_percent": 10, "max_percent": 90}
    body: dict[str, Any] = {"type": "set_soc_limits", "params": limits, "ttl_s": 60}

    def sent() -> str | None:
        answer = httpx.post(
            f"{CONTROL}/v1/units/MP-0001/commands", json=body, headers=headers, timeout=10
        )
        if answer.status_code == 404:
            return None  # the unit's first reading has not landed yet
        if answer.status_code != 202:
            raise Failure(f"command answered {answer.status_code}: {answer.text[:300]}")
        return str(answer.json()["command_id"])

    command_id = wait_for("MP-0001 known to the control service", sent, timeout_s=90)
    seen: dict[str, Any] = {}

    def final() -> bool:
        seen.update(httpx.get(f"{CONTROL}/v1/commands/{command_id}", headers=headers).json())
        return seen.get("status") in FINAL

    wait_for(f"command {command_id} final", final, timeout_s=90)
    if seen["status"] != "completed":
        raise Failure(f"command {command_id} ended {seen['status']}: {seen}")
    return f"command {command_id} completed"


def management_ui(ctx: Context) -> str:
    """The management UI answers on :15672 and takes the generated admin password."""
    page = httpx.get(f"{MANAGEMENT}/", timeout=10)
    auth = ("admin", ctx.secrets["RABBITMQ_ADMIN_PASSWORD"])
    overview = httpx.get(f"{MANAGEMENT}/api/overview", auth=auth, timeout=10)
    if page.status_code != 200 or "RabbitMQ" not in page.text or overview.status_code != 200:
        raise Failure(f"management UI {page.status_code}, /api/overview {overview.status_code}")
    return f"management UI up (RabbitMQ {overview.json().get('rabbitmq_version')})"


def _restart_and_resume(ctx: Context, service: str) -> float:
    """Restart one service's container; seconds until readings flow again (ledger and sim)."""
    assert ctx.ledger is not None
    ctx.project("restart", service, timeout_s=180)
    restarted_ms = time.time_ns() // 1_000_000
    started = time.monotonic()
    wait_for(
        f"the gateway accepting again after the {service} restart",
        lambda: ctx.ledger is not None and ctx.ledger.accepted_since(restarted_ms) > 0,
        timeout_s=RESUME_TIMEOUT_S,
    )
    query = "SELECT count(*) FROM megapack_telemetry WHERE unit_id LIKE 'MP-%' AND time > "
    query += "to_timestamp(:'since'::bigint / 1000.0)"
    wait_for(
        f"the simulator's readings stored again after the {service} restart",
        lambda: int(psql(ctx, query, since=str(restarted_ms)) or 0) > 0,
        timeout_s=RESUME_TIMEOUT_S,
    )
    return time.monotonic() - started


def restarts_lose_nothing(ctx: Context) -> str:
    """Restart the broker, then the database, under load: every 202 is stored, the flow resumes."""
    assert ctx.ledger is not None
    ctx.ledger.start()
    try:
        broker_s = _restart_and_resume(ctx, "rabbitmq")
        database_s = _restart_and_resume(ctx, "timescaledb")
    finally:
        ctx.ledger.stop()
    stored = all_acknowledged_stored(ctx, timeout_s=180)
    return f"resumed {broker_s:.0f} s after the broker, {database_s:.0f} s after the db; {stored}"


def down_leaves_nothing(ctx: Context) -> str:
    """`down -v` removes every container, volume and network of the project."""
    ctx.project("down", "-v", "--remove-orphans", "-t", "30", timeout_s=300)
    left = ctx.project.leftovers()
    if left:
        raise Failure(f"left behind after down -v: {left}")
    return "no container, volume or network left"
