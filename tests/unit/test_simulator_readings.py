"""Every simulated reading is valid for the gateway, and the same seed and clock repeat them."""

from __future__ import annotations

import orjson
import pytest

from common.codec import message_to_dict
from common.readings import EvReading, MegapackReading
from proto.megapack.v1 import telemetry_pb2 as pb
from simulator.clock import ManualClock
from simulator.fleet import Fleet
from simulator.wire import encode_protobuf

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def fleet(seed: int, *, fault_rate: float = 0.5) -> Fleet:
    return Fleet(
        megapack_count=12,
        ev_count=8,
        site_count=3,
        fleet_count=2,
        seed=seed,
        fault_rate_per_h=fault_rate,
        faulted_units=("MP-0003",),
    )


def run(seed: int, steps: int, *, dt_s: float = 1.0) -> list[bytes]:
    clock = ManualClock(START_MS)
    simulated = fleet(seed)
    out = []
    for _ in range(steps):
        emission = simulated.step(clock.now_ms(), default_dt_s=dt_s)
        out.append(orjson.dumps([emission.sites, emission.fleets]))
        clock.advance(dt_s)
    return out


def test_the_same_seed_and_clock_give_the_same_readings() -> None:
    assert run(11, 300) == run(11, 300)
    assert run(11, 5) != run(12, 5)


def test_every_reading_over_two_days_passes_the_gateway_validation() -> None:
    simulated = fleet(7, fault_rate=3.0)  # many faults, to meet every state and code
    states: set[str] = set()
    charging: set[str] = set()
    now_ms = START_MS
    for _ in range(2 * 24 * 60):
        emission = simulated.step(now_ms, default_dt_s=60)
        context = {"now_ms": now_ms}
        for readings in emission.sites.values():
            for reading in orjson.loads(orjson.dumps(readings)):
                states.add(MegapackReading.model_validate(reading, context=context).state)
        for readings in emission.fleets.values():
            for reading in orjson.loads(orjson.dumps(readings)):
                charging.add(EvReading.model_validate(reading, context=context).charging_state)
        now_ms += 60_000
    assert {"CHARGING", "DISCHARGING", "FAULT", "MAINTENANCE", "OFFLINE"} <= states
    assert {"NOT_CHARGING", "CHARGING", "COMPLETE"} <= charging


@pytest.mark.parametrize("kind", ["megapack", "ev"])
def test_protobuf_batches_decode_to_the_same_valid_readings(kind: str) -> None:
    simulated = fleet(3)
    emission = simulated.step(START_MS)
    readings = [
        r for rs in (emission.sites if kind == "megapack" else emission.fleets).values() for r in rs
    ]
    batch = pb.TelemetryBatch.FromString(encode_protobuf(kind, readings))
    messages = batch.megapack if kind == "megapack" else batch.ev
    model = MegapackReading if kind == "megapack" else EvReading
    decoded = [model.model_validate(message_to_dict(m)) for m in messages]
    assert [d.model_dump(exclude_none=True) for d in decoded] == [
        model.model_validate(r).model_dump(exclude_none=True) for r in readings
    ]
