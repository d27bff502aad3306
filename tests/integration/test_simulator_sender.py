"""The sender against a scripted local HTTP server: retries, Retry-After, no loss, drops counted."""

from __future__ import annotations

import random

import httpx
import orjson

from proto.megapack.v1 import telemetry_pb2 as pb
from simulator.fleet import Emission
from simulator.sender import RetryPolicy, Sender
from simulator.stats import Stats, percentile
from tests.support.sim_sink import Answer, Sink

FAST = RetryPolicy(base_s=0.01, cap_s=0.05, window_s=5.0)


def emission(step: int, *, units: int = 3, vehicles: int = 2) -> Emission:
    sites = {
        "SITE-01": [
            {"unit_id": f"MP-{u:04d}", "timestamp": step, "state": "IDLE"} for u in range(units)
        ]
    }
    fleets = {
        "FLEET-01": [{"vehicle_id": f"EV-{v:04d}", "timestamp": step} for v in range(vehicles)]
    }
    return Emission(sites=sites, fleets=fleets if vehicles else {})


def delivered(sink: Sink) -> list[tuple[str, int]]:
    """(id, timestamp) of every reading in a request the sink answered 202."""
    out = []
    for _path, body, status, _at in sink.requests:
        if status == 202:
            for reading in orjson.loads(body)["readings"]:
                out.append((reading.get("unit_id") or reading["vehicle_id"], reading["timestamp"]))
    return out


async def test_503_then_202_delivers_everything_once_honouring_retry_after() -> None:
    sink = await Sink(
        [Answer(503, {"Retry-After": "0.3"}), Answer(503), Answer(0, close=True)]
    ).start()
    stats = Stats()
    async with httpx.AsyncClient(base_url=sink.url) as client:
        sender = Sender(client=client, stats=stats, retry=FAST, rng=random.Random(1))
        for step in range(3):
            sender.submit(emission(step, vehicles=0))
        await sender.drain(timeout_s=5)
    await sink.close()
    got = delivered(sink)
    assert sorted(got) == sorted((f"MP-{u:04d}", s) for u in range(3) for s in range(3))
    assert len(got) == len(set(got))  # nothing twice
    assert stats.retries == 3
    assert stats.accepted == 9
    assert stats.dropped == 0
    first, second = sink.requests[0][3], sink.requests[1][3]
    assert second - first >= 0.3  # waited at least Retry-After


async def test_one_request_per_site_and_per_fleet_each_interval_in_protobuf() -> None:
    sink = await Sink().start()
    stats = Stats()
    readings = {
        "SITE-01": [
            {
                "unit_id": "MP-0001", "site_id": "SITE-01", "timestamp": 5, "soc_percent": 50.0,
                "soh_percent": 99.0, "power_kw": 1.0, "voltage_v": 480.0, "current_a": 1.2,
                "temperature_c": 25.0, "state": "CHARGING", "fault_codes": [],
            }
        ]
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=sink.url) as client:
        sender = Sender(client=client, stats=stats, telemetry_format="protobuf", retry=FAST)
        sender.submit(Emission(sites={**readings, "SITE-02": readings["SITE-01"]}, fleets={}))
        await sender.drain(timeout_s=5)
    await sink.close()
    assert [path for path, *_ in sink.requests] == ["/v1/telemetry/megapack"] * 2
    batch = pb.TelemetryBatch.FromString(sink.requests[0][1])
    assert batch.megapack[0].unit_id == "MP-0001"
    assert batch.megapack[0].state == pb.UNIT_STATE_CHARGING


async def test_overflow_and_an_exhausted_retry_window_are_counted_as_dropped() -> None:
    sink = await Sink([Answer(503)] * 1000).start()
    stats = Stats()
    policy = RetryPolicy(base_s=0.01, cap_s=0.02, window_s=0.3)
    async with httpx.AsyncClient(base_url=sink.url) as client:
        sender = Sender(client=client, stats=stats, buffer_readings=4, max_batch=2, retry=policy)
        for step in range(5):
            sender.submit(emission(step, vehicles=0))  # 15 readings into a buffer of 4
        await sender.drain(timeout_s=2)
    await sink.close()
    assert stats.accepted == 0
    assert stats.dropped == 15  # every one accounted for: overflow, given up, or unsent at stop
    assert stats.retries > 0


async def test_a_rejected_batch_is_counted_and_not_retried() -> None:
    sink = await Sink([Answer(422)]).start()
    stats = Stats()
    async with httpx.AsyncClient(base_url=sink.url) as client:
        sender = Sender(client=client, stats=stats, retry=FAST)
        sender.submit(emission(0, units=2, vehicles=0))
        await sender.drain(timeout_s=5)
    await sink.close()
    assert stats.rejected == 2
    assert stats.retries == 0
    assert len(sink.requests) == 1


def test_stats_window_reports_rates_and_latency_percentiles() -> None:
    stats = Stats(sent=100, accepted=90, latencies_s=[0.01] * 98 + [0.5, 0.9])
    line = stats.window(2.0, buffered=7)
    assert line["sent_per_s"] == 50.0
    assert line["accepted_per_s"] == 45.0
    assert line["p50_ms"] == 10.0
    assert line["p99_ms"] == 900.0
    assert stats.window(1.0, buffered=0)["sent_per_s"] == 0.0
    assert percentile([], 0.5) == 0.0
