"""`python -m bench.load SPEC_JSON`: drive HTTP load, print the result as one JSON line.

Runs in its own process so that the load it offers does not share an interpreter with what
it measures. Closed loop (each connection sends its next request when the last is answered)
unless `rate_readings_per_s` is set, then open loop at that rate. The client is aiohttp: its
C parser costs the loader a fraction of httpx's CPU per request (the loader shares the cores
with what it measures, so its cost caps every figure).
"""

from __future__ import annotations

import asyncio
import math
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import uvloop

from bench.bodies import BodyMaker, Encoding

SHARE_MAKER_FROM = 1000  # readings per request


@dataclass(slots=True)
class Spec:
    """What to send, where, for how long."""

    urls: list[str]
    path: str
    key: str
    tag: str
    encoding: Encoding
    readings: int
    connections: int
    warmup_s: float
    duration_s: float
    rate_readings_per_s: float = 0.0
    backoff_s: float = 0.05


@dataclass(slots=True)
class Stats:
    """Answers counted inside the measured window, and in total."""

    window_start: float
    window_end: float
    statuses: Counter[int] = field(default_factory=Counter)
    accepted_total: int = 0
    accepted_window: int = 0
    requests_window: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, status: int, readings: int, started: float, ended: float) -> None:
        self.statuses[status] += 1
        if status == 202:
            self.accepted_total += readings
        if self.window_start <= ended < self.window_end:
            self.requests_window += 1
            self.latencies_s.append(ended - started)
            if status == 202:
                self.accepted_window += readings


@dataclass(slots=True)
class Client:
    """One session (its own connection pool) towards one gateway."""

    session: aiohttp.ClientSession
    url: str
    key: str


async def _post(
    client: Client, spec: Spec, maker: BodyMaker, stats: Stats
) -> tuple[int | None, float]:
    """Send one request: its status (None on a transport error) and the Retry-After asked."""
    body = maker.next()
    headers = {"Content-Type": maker.content_type, "X-API-Key": client.key}
    started = time.time()
    try:
        async with client.session.post(client.url + spec.path, data=body, headers=headers) as r:
            await r.read()
            status, retry_after = r.status, r.headers.get("Retry-After", "")
    except (aiohttp.ClientError, TimeoutError) as error:
        stats.errors[type(error).__name__] += 1
        return None, spec.backoff_s
    stats.record(status, maker.readings, started, time.time())
    return status, float(retry_after) if retry_after.isdigit() else spec.backoff_s


async def _closed_loop(client: Client, spec: Spec, maker: BodyMaker, stats: Stats) -> None:
    while time.time() < stats.window_end:
        status, retry_after_s = await _post(client, spec, maker, stats)
        if status != 202:  # push-back or failure: wait as told, as a device does
            await asyncio.sleep(retry_after_s)


async def _open_loop(clients: list[Client], spec: Spec, stats: Stats) -> None:
    maker = BodyMaker(tag=f"{spec.tag}-0", readings=spec.readings, encoding=spec.encoding)
    interval_s = spec.readings / spec.rate_readings_per_s
    tasks: set[asyncio.Task[tuple[int | None, float]]] = set()
    due = time.monotonic()
    sent = 0
    while time.time() < stats.window_end:
        client = clients[sent % len(clients)]
        task = asyncio.create_task(_post(client, spec, maker, stats))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
        due += interval_s
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks)


async def run(spec: Spec) -> dict[str, Any]:
    """Offer the load; returns counts, rates, latencies and this process's CPU and memory."""
    per_url = max(1, spec.connections // len(spec.urls))
    timeout = aiohttp.ClientTimeout(total=30)
    clients = [
        Client(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=per_url), timeout=timeout),
            url,
            spec.key,
        )
        for url in spec.urls
    ]
    cpu_before = time.process_time()
    now = time.time()
    stats = Stats(
        window_start=now + spec.warmup_s, window_end=now + spec.warmup_s + spec.duration_s
    )
    if spec.rate_readings_per_s > 0:
        await _open_loop(clients, spec, stats)
    else:
        # Big bodies share one maker (each request is still a new millisecond): building
        # 1,000 readings per connection would cost the loader seconds before it starts.
        shared = BodyMaker(tag=f"{spec.tag}-s", readings=spec.readings, encoding=spec.encoding)
        makers = [
            shared
            if spec.readings >= SHARE_MAKER_FROM
            else BodyMaker(tag=f"{spec.tag}-{i}", readings=spec.readings, encoding=spec.encoding)
            for i in range(spec.connections)
        ]
        await asyncio.gather(
            *(
                _closed_loop(clients[i % len(clients)], spec, makers[i], stats)
                for i in range(spec.connections)
            )
        )
    ended = time.time()
    for client in clients:
        await client.session.close()
    latencies = sorted(stats.latencies_s)
    return {
        "window_start": stats.window_start,
        "window_end": stats.window_end,
        "accepted_total": stats.accepted_total,
        "accepted_window": stats.accepted_window,
        "requests_window": stats.requests_window,
        "requests_per_s": stats.requests_window / spec.duration_s,
        "accepted_per_s": stats.accepted_window / spec.duration_s,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "errors": dict(stats.errors),
        "latency_ms": {f"p{q}": round(percentile(latencies, q) * 1000, 2) for q in (50, 95, 99)},
        "cpu_s_per_s": round((time.process_time() - cpu_before) / (ended - now), 3),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of an ascending list; 0 when it is empty."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def main() -> None:
    """Read the spec from argv[1], run, print the result as JSON."""
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print("usage: python -m bench.load SPEC_JSON  (started by `python -m bench`)")
        raise SystemExit(0 if len(sys.argv) == 2 else 2)
    spec = Spec(**orjson.loads(sys.argv[1]))
    result = uvloop.run(run(spec))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
