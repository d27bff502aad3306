"""`python -m bench.console`: the web console against 10,000 units.

Seeds a database with 9,000 Megapacks and 1,000 EVs, starts the monitoring service, moves
every unit once a second (as a fleet reporting at 1 Hz does), and measures what one open
console costs: bytes/s of its push stream (overview, unit page, EV map), how long after a
unit's update it reaches the console, the overview's API answers, and - with Chromium - the
time until the overview, its next page of units and the sites view are drawn in a real browser.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import httpx
import orjson

from bench.console_browser import browser_views
from bench.procs import Proc, free_port
from bench.stack import Stack
from common.topology import Names, delete_all
from db.migrate import migrate

KEY = "bench-operator-secret"
MEGAPACKS = 9_000
EVS = 1_000
SITES = 50
PAGE = 50  # the overview's page of units


async def seed(conn: asyncpg.Connection) -> None:
    """10,000 units that have just reported, and a position for every EV."""
    await conn.execute(
        """INSERT INTO units (unit_id, kind, site_id, last_seen, last_state, last_soc_percent,
               last_power_kw, last_temperature_c)
           SELECT format('MP-%s', lpad(i::text, 5, '0')), 'megapack',
                  format('SITE-%s', lpad((i % $2)::text, 2, '0')), now(), 'DISCHARGING',
                  20 + (i % 70), 500, 25
           FROM generate_series(1, $1) AS i""",
        MEGAPACKS,
        SITES,
    )
    await conn.execute(
        """INSERT INTO units (unit_id, kind, fleet_id, last_seen, last_state, last_soc_percent,
               last_power_kw, last_temperature_c)
           SELECT format('EV-%s', lpad(i::text, 5, '0')), 'ev', 'FLEET-01', now(),
                  'NOT_CHARGING', 5 + (i % 90), 0, 22
           FROM generate_series(1, $1) AS i""",
        EVS,
    )
    await conn.execute(
        """INSERT INTO ev_telemetry (vehicle_id, time, fleet_id, battery_soc_percent,
               battery_temp_c, latitude, longitude, speed_kmh, charging_state, charge_power_kw,
               received_at)
           SELECT format('EV-%s', lpad(i::text, 5, '0')), now(), 'FLEET-01', 5 + (i % 90), 22,
                  37.7 + (i % 97) / 1000.0, -122.5 + (i % 89) / 1000.0, 30, 'NOT_CHARGING', 0,
                  now()
           FROM generate_series(1, $1) AS i""",
        EVS,
    )


async def move_fleet(dsn: str, stop: asyncio.Event, *, period_s: float = 1.0) -> list[float]:
    """Every unit reports once per period (its `units` row changes); returns update durations."""
    durations: list[float] = []
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            started = time.monotonic()
            await conn.execute(
                """UPDATE units SET last_seen = now(), updated_at = now(),
                       last_soc_percent = 5 + ((last_soc_percent + 0.1)::numeric % 90)"""
            )
            durations.append(time.monotonic() - started)
            await asyncio.sleep(max(0.0, period_s - (time.monotonic() - started)))
    finally:
        await conn.close()
    return durations


def ignore(_: Any) -> None:
    """A stream whose events are only counted."""


async def watch_stream(
    url: str, query: dict[str, str], stop: asyncio.Event, *, on_units: Callable[[Any], None]
) -> dict[str, Any]:
    """Read one console's stream until `stop`: bytes and events received."""
    received = 0
    events: dict[str, int] = {}
    started = time.monotonic()
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=30)) as client,
        client.stream(
            "GET", f"{url}/v1/console/stream", params=query, headers={"X-API-Key": KEY}
        ) as response,
    ):
        response.raise_for_status()
        buffer = b""
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            buffer += chunk
            *blocks, buffer = buffer.split(b"\n\n")
            for block in blocks:
                name, _, data = block.partition(b"\ndata: ")
                event = name.removeprefix(b"event: ").decode()
                events[event] = events.get(event, 0) + 1
                if event == "units":
                    on_units(orjson.loads(data))
            if stop.is_set():
                break
    elapsed = time.monotonic() - started
    return {"bytes": received, "seconds": round(elapsed, 1), "events": events,
            "bytes_per_s": round(received / elapsed)}  # fmt: skip


async def fleet_snapshot_bytes(url: str) -> int:
    """What pushing the whole fleet once would weigh: every unit's row as GET /v1/units gives it
    (what the push channel does not send each second)."""
    total, cursor = 0, None
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
        while True:
            params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            answer = (await client.get("/v1/units", params=params)).raise_for_status()
            total += len(answer.content)
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                return total


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load (a busy host slows every figure here)."""
    return [round(value, 2) for value in os.getloadavg()]


async def overview_api(url: str) -> dict[str, float]:
    """The overview's two requests, timed (ms; best of five)."""
    timings: dict[str, list[float]] = {"summary_ms": [], "units_page_ms": []}
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
        for _ in range(5):
            for name, path in (("summary_ms", "/v1/monitoring/summary"),
                               ("units_page_ms", f"/v1/units?limit={PAGE}")):  # fmt: skip
                started = time.perf_counter()
                (await client.get(path)).raise_for_status()
                timings[name].append((time.perf_counter() - started) * 1000)
    return {name: round(min(values), 1) for name, values in timings.items()}


async def measure(
    *, dsn: str, amqp_url: str, prefix: str, say: Callable[[str], None], duration_s: float = 20
) -> dict[str, Any]:
    """The console scenario on a migrated, empty database."""
    conn = await asyncpg.connect(dsn)
    try:
        await seed(conn)
    finally:
        await conn.close()
    port = free_port()
    env = {"DATABASE_URL": dsn, "AMQP_URL": amqp_url, "AMQP_PREFIX": prefix,
           "OPERATOR_API_KEYS": f"bench:{KEY}", "GATEWAY_URL": "http://127.0.0.1:9",
           "MONITORING_PORT": str(port), "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING",
           "REPORT_FORMAT": "json"}  # fmt: skip
    monitoring = Proc("console-monitoring", "monitoring_service", env, port=port).start()
    try:
        await monitoring.wait_ready(timeout_s=180)
        say(f"console bench: {MEGAPACKS + EVS} units, monitoring service on :{port}")
        load_before = load_average()
        api = await overview_api(monitoring.url)
        snapshot_bytes = await fleet_snapshot_bytes(monitoring.url)
        browser = await asyncio.to_thread(
            browser_views, monitoring.url, key=KEY, page_rows=PAGE, sites=SITES
        )
        stop = asyncio.Event()
        lags_ms: list[float] = []

        def lag(units: list[dict[str, Any]]) -> None:
            now = time.time()
            lags_ms.extend((now - datetime.fromisoformat(u["last_seen"]).timestamp()) * 1000
                           for u in units)  # fmt: skip

        page_ids = ",".join(f"EV-{i:05d}" for i in range(1, PAGE + 1))  # the first page, id order
        mover = asyncio.create_task(move_fleet(dsn, stop))
        streams = {
            "overview": watch_stream(monitoring.url, {"watch": page_ids}, stop, on_units=lag),
            "unit": watch_stream(monitoring.url, {"watch": "MP-00001"}, stop, on_units=ignore),
            "ev_map": watch_stream(monitoring.url, {"evs": "true"}, stop, on_units=ignore),
        }  # fmt: skip
        tasks = {name: asyncio.create_task(stream) for name, stream in streams.items()}
        await asyncio.sleep(duration_s)
        stop.set()
        consoles = {name: await task for name, task in tasks.items()}
        updates = await mover
        load_after = load_average()
    finally:
        await monitoring.stop()
    lags_ms.sort()
    lag_ms = {
        "p50": round(lags_ms[len(lags_ms) // 2]) if lags_ms else None,
        "p95": round(lags_ms[int(len(lags_ms) * 0.95)]) if lags_ms else None,
        "max": round(lags_ms[-1]) if lags_ms else None,
        "samples": len(lags_ms),
    }
    result = {
        "units": MEGAPACKS + EVS, "duration_s": duration_s, "api": api, "browser": browser,
        "consoles": consoles, "whole_fleet_snapshot_bytes": snapshot_bytes,
        "load_average": {"before": load_before, "after": load_after},
        "fleet_update_ms_p50": round(statistics.median(updates) * 1000, 1) if updates else None,
        "update_to_console_ms": lag_ms,
    }  # fmt: skip
    say(
        "console bench: bytes/s per console "
        + ", ".join(f"{name} {c['bytes_per_s']}" for name, c in consoles.items())
        + f" (the whole fleet once: {snapshot_bytes}); update→console p95 {lag_ms['p95']} ms; "
        f"overview drawn {browser.get('overview_drawn', {}).get('best_ms')} ms; "
        f"load {load_before} → {load_after}"
    )
    return result


async def scenario(stack: Stack) -> dict[str, Any]:
    """`python -m bench`'s console scenario, in a database of its own next to the stack's."""
    dsn = f"{stack.dsn}_console"
    prefix = f"{stack.prefix}console."
    await migrate(dsn)
    try:
        return await measure(dsn=dsn, amqp_url=stack.options.amqp_url, prefix=prefix,
                             say=stack.say)  # fmt: skip
    finally:
        await drop(dsn)
        await delete_broker_objects(stack.options.amqp_url, prefix)


async def delete_broker_objects(amqp_url: str, prefix: str) -> None:
    """What the monitoring service declared under the bench's prefix."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await delete_all(await connection.channel(), Names(prefix))


async def drop(dsn: str) -> None:
    """Drop a database this bench made."""
    admin = await asyncpg.connect(urlunsplit(urlsplit(dsn)._replace(path="/postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[-1]}" WITH (FORCE)')
    finally:
        await admin.close()


async def standalone(database_url: str, amqp_url: str, duration_s: float) -> dict[str, Any]:
    """Own database and prefix, removed afterwards."""
    run_id = uuid.uuid4().hex[:8]
    dsn = urlunsplit(urlsplit(database_url)._replace(path=f"/megapack_console_{run_id}"))
    prefix = f"bench-console-{run_id}."
    await migrate(dsn)
    try:
        return await measure(dsn=dsn, amqp_url=amqp_url, prefix=prefix, say=print,
                             duration_s=duration_s)  # fmt: skip
    finally:
        await drop(dsn)
        await delete_broker_objects(amqp_url, prefix)


def main() -> None:
    """Parse, run, print the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of streaming")
    parser.add_argument(
        "--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/megapack"),
        help="server to use; the bench creates and drops its own database there",
    )
    args = parser.parse_args()
    result = asyncio.run(standalone(args.database_url, args.amqp_url, args.duration))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
