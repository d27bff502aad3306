"""The measurements of one bench run, each returning a JSON-ready dict."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import profile
from bench.parts import prefill
from bench.procs import Proc, free_port, status_kb
from bench.stack import BENCH_KEY, CpuMeter, Stack

SHAPES: dict[str, dict[str, Any]] = {
    "single": {"encoding": "json", "readings": 1, "connections": 128},
    "json": {"encoding": "json", "readings": 100, "connections": 16},
    "protobuf": {"encoding": "protobuf", "readings": 1000, "connections": 8},
}
TAGS = {"single": "SGL", "json": "JSN", "protobuf": "PRB", "lag": "LAG", "overload": "OVL"}
LAG_OFFERED_PER_S = 10_000
DRAIN_MESSAGES, DRAIN_READINGS = 400, 1000

WINDOW_STATS = """
SELECT count(*) FILTER (WHERE stored_at >= $2 AND stored_at < $3) AS landed,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM stored_at - received_at))
           FILTER (WHERE received_at >= $2 AND received_at < $3) AS lag_s
FROM megapack_telemetry WHERE unit_id LIKE $1
"""


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


async def drive(
    stack: Stack,
    *,
    tag: str,
    urls: list[str] | None = None,
    rate: float = 0.0,
    sample_rss: list[Proc] | None = None,
    meter_extra: dict[str, list[int]] | None = None,
    profile_as: str | None = None,
    **shape: Any,
) -> tuple[dict[str, Any], dict[str, float], dict[str, list[int]]]:
    """Run the load generator(s); returns their merged result, CPU use and RSS samples (kB)."""
    options = stack.options
    loaders = options.loaders
    specs = [
        {
            "urls": urls or [g.url for g in stack.gateways],
            "path": "/v1/telemetry/megapack",
            "key": BENCH_KEY,
            "tag": f"{tag}-L{index}",
            "warmup_s": options.warmup_s,
            "duration_s": options.duration_s,
            "rate_readings_per_s": rate / loaders,
            **{**shape, "connections": max(1, shape["connections"] // loaders)},
        }
        for index in range(loaders)
    ]
    tasks = [
        asyncio.create_task(stack.child("bench.load", orjson.dumps(spec).decode()))
        for spec in specs
    ]
    rss: dict[str, list[int]] = {p.name: [] for p in sample_rss or []}
    await asyncio.sleep(options.warmup_s)
    profiling = None
    if options.profile_dir and profile_as:
        profiling = asyncio.create_task(
            profile.record([*stack.gateways, *stack.consumers], seconds=options.duration_s,
                           directory=Path(options.profile_dir), scenario=profile_as)
        )  # fmt: skip
    meter = await CpuMeter.start(stack, meter_extra)
    ends = time.monotonic() + options.duration_s
    while time.monotonic() < ends:
        for proc in sample_rss or []:
            rss[proc.name].append(status_kb(proc.pid, "VmRSS"))
        await asyncio.sleep(min(0.5, max(0.0, ends - time.monotonic())))
    cpu = meter.read()
    if profiling is not None:
        await profiling
    results = await asyncio.gather(*tasks)
    stack.sample_peaks()
    return _merge(results), cpu, rss


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(results[0])
    for other in results[1:]:
        for key in ("accepted_total", "accepted_window", "requests_window", "requests_per_s",
                    "accepted_per_s", "cpu_s_per_s"):  # fmt: skip
            merged[key] += other[key]
        for status, count in other["statuses"].items():
            merged["statuses"][status] = merged["statuses"].get(status, 0) + count
        merged["latency_ms"] = {
            q: max(v, other["latency_ms"][q]) for q, v in merged["latency_ms"].items()
        }
    return merged


async def end_to_end(stack: Stack, name: str, *, rate: float = 0.0, **shape: Any) -> dict[str, Any]:
    """Drive one request shape; readings/s accepted and landed, lag, loss, CPU."""
    tag = TAGS[name]
    stack.say(f"{name}: {shape} {f'at {rate:.0f} readings/s' if rate else 'closed loop'}")
    watched = [*stack.gateways, *stack.consumers] if name == "overload" else None
    load, cpu, rss = await drive(
        stack, tag=tag, rate=rate, sample_rss=watched, profile_as=name, **shape
    )
    landed_total = await stack.wait_rows(tag, load["accepted_total"])
    row = await stack.db.fetchrow(  # type: ignore[union-attr]
        WINDOW_STATS, tag + "-%", _utc(load["window_start"]), _utc(load["window_end"])
    )
    assert row is not None
    lag = [round(v * 1000, 1) for v in row["lag_s"] or [0, 0, 0]]
    duration = stack.options.duration_s
    landed_per_s = row["landed"] / duration
    cores = {**cpu, "loader": load["cpu_s_per_s"]}
    result = {
        "shape": shape,
        "offered_readings_per_s": rate or None,
        "requests_per_s": round(load["requests_per_s"], 1),
        "accepted_per_s": round(load["accepted_per_s"]),
        "landed_per_s": round(landed_per_s),
        "accepted_total": load["accepted_total"],
        "landed_total": landed_total,
        "lost": max(0, load["accepted_total"] - landed_total),
        # a publish confirmed after the gateway gave up answers 503 yet is stored: a retry of
        # it is then a duplicate the database drops
        "stored_after_503": max(0, landed_total - load["accepted_total"]),
        "statuses": load["statuses"],
        "errors": load["errors"],
        "http_latency_ms": load["latency_ms"],
        "lag_ms": {"p50": lag[0], "p95": lag[1], "p99": lag[2]},
        "cpu_cores": cores,
        "cpu_us_per_reading": {
            k: round(v * 1e6 / landed_per_s, 2) if landed_per_s else None for k, v in cores.items()
        },
    }
    if rss:
        result["rss_mb"] = {
            proc: {
                "first": s[0] // 1024,
                "mid": s[len(s) // 2] // 1024,
                "last": s[-1] // 1024,
                "max": max(s) // 1024,
            }
            for proc, s in rss.items()
            if s
        }
    stack.say(
        f"  accepted {result['accepted_per_s']:,}/s landed {result['landed_per_s']:,}/s "
        f"lag p99 {lag[2]} ms lost {result['lost']} cpu {result['cpu_cores']}"
    )
    return result


async def drain(stack: Stack) -> dict[str, Any]:
    """Ingestion alone: stop the consumers, pre-fill the queue, time how fast they empty it."""
    stack.say(f"drain: {DRAIN_MESSAGES} messages x {DRAIN_READINGS} readings, consumers stopped")
    await stack.stop_consumers()
    expected = await prefill(
        amqp_url=stack.options.amqp_url, prefix=stack.prefix, tag="DRN",
        messages=DRAIN_MESSAGES, readings=DRAIN_READINGS,
    )  # fmt: skip
    started = time.monotonic()
    await stack.start_consumers()
    await stack.wait_rows("DRN", 1)  # connected and storing: its backend can be measured
    meter = await CpuMeter.start(stack)
    landed = await stack.wait_rows("DRN", expected)
    wall_s = time.monotonic() - started
    cpu = meter.read()
    row = await stack.db.fetchrow(  # type: ignore[union-attr]
        """SELECT min(stored_at) AS first, max(stored_at) AS last,
                  count(*) FILTER (WHERE stored_at = (SELECT max(stored_at)
                      FROM megapack_telemetry WHERE unit_id LIKE 'DRN-%')) AS last_batch
           FROM megapack_telemetry WHERE unit_id LIKE 'DRN-%'"""
    )
    assert row is not None
    span_s = max(1e-3, (row["last"] - row["first"]).total_seconds())
    rate = (landed - row["last_batch"]) / span_s
    stack.say(f"  drained {landed:,} rows at {rate:,.0f} rows/s ({wall_s:.1f} s with start-up)")
    return {
        "readings": expected, "landed": landed, "lost": expected - landed,
        "rows_per_s": round(rate), "wall_s_with_startup": round(wall_s, 2), "cpu_cores": cpu,
    }  # fmt: skip


async def parts(stack: Stack) -> dict[str, Any]:
    """Raw COPY rows/s, raw publish messages/s, the bare endpoint's requests/s."""
    seconds = max(5.0, stack.options.duration_s * 2 / 3)
    stack.say("raw asyncpg COPY into megapack_telemetry")
    copy = await stack.child(
        "bench.parts", "copy", orjson.dumps({"dsn": stack.dsn, "seconds": seconds,
                                             "batch_rows": 10_000}).decode())  # fmt: skip
    stack.say(f"  {copy['rows_per_s']:,.0f} rows/s")
    publish = {}
    for readings, in_flight in ((1, 64), (1000, 8)):
        stack.say(f"raw aio-pika publish with confirms, {readings}-reading messages")
        spec = {"amqp_url": stack.options.amqp_url, "prefix": stack.prefix,
                "seconds": seconds / 2, "in_flight": in_flight, "readings": readings}  # fmt: skip
        publish[f"{readings}_reading"] = result = await stack.child(
            "bench.parts", "publish", orjson.dumps(spec).decode()
        )
        stack.say(f"  {result['messages_per_s']:,.0f} messages/s ({result['message_bytes']} B)")
    port = free_port()
    bare = Proc("bare", "bench.bare", {}, ("--port", str(port)), port).start()
    try:
        await bare.wait_ready(path="/readyz")
        stack.say("bare FastAPI endpoint, single-reading requests")
        load, cpu, _ = await drive(
            stack, tag="BARE", urls=[bare.url], meter_extra={"bare": [bare.pid]},
            **SHAPES["single"],
        )  # fmt: skip
        bare.sample_peak()
    finally:
        await bare.stop()
    stack.say(f"  {load['requests_per_s']:,.0f} requests/s")
    return {
        "copy": copy,
        "publish": publish,
        "bare_endpoint": {
            "requests_per_s": round(load["requests_per_s"], 1),
            "statuses": load["statuses"],
            "http_latency_ms": load["latency_ms"],
            "cpu_us_per_request": round(cpu["bare"] * 1e6 / max(1.0, load["requests_per_s"])),
            "cpu_cores": {
                "bare": cpu["bare"],
                "machine": cpu["machine"],
                "loader": load["cpu_s_per_s"],
            },
            "peak_rss_mb": bare.peak_rss_kb // 1024,
        },
    }


async def storage(stack: Stack) -> dict[str, Any]:
    """Bytes per stored Megapack reading, heap and indexes (plain PostgreSQL, uncompressed)."""
    assert stack.db is not None
    row = await stack.db.fetchrow(
        """SELECT count(*) AS rows, pg_table_size('megapack_telemetry') AS heap,
                  pg_indexes_size('megapack_telemetry') AS indexes FROM megapack_telemetry"""
    )
    assert row is not None
    rows = max(1, row["rows"])
    return {
        "megapack_rows": row["rows"],
        "heap_bytes_per_row": round(row["heap"] / rows),
        "index_bytes_per_row": round(row["indexes"] / rows),
    }
