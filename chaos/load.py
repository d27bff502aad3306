"""Steady load with a ledger of every reading the gateway answered 202 for.

Each reading has its own key (kind, unit id, epoch ms) and values derived from it. A refused
request (503, 429, a dropped connection, a timeout) is retried with the same readings, as a
well-behaved device does; a retry of a request that was in fact accepted stores nothing twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

Kind = Literal["megapack", "ev"]
Key = tuple[Kind, str, int]  # (kind, unit or vehicle id, epoch ms)
RETRYABLE = (429, 503)
MEGAPACK_FIELDS = (
    "site_id", "soc_percent", "soh_percent", "power_kw", "voltage_v", "current_a",
    "temperature_c", "state", "fault_codes",
)  # fmt: skip
EV_FIELDS = (
    "fleet_id", "battery_soc_percent", "battery_temp_c", "latitude", "longitude", "speed_kmh",
    "charging_state", "charge_power_kw", "tire_pressure_psi", "odometer_km",
)  # fmt: skip
FIELDS: dict[Kind, tuple[str, ...]] = {"megapack": MEGAPACK_FIELDS, "ev": EV_FIELDS}
_STATES = ("IDLE", "CHARGING", "DISCHARGING", "STANDBY", "FAULT")
_CHARGING = ("NOT_CHARGING", "CHARGING", "COMPLETE")


def reading(kind: Kind, unit_id: str, time_ms: int, seq: int) -> dict[str, Any]:
    """A valid reading whose values vary with `seq` (so a mix-up of rows shows)."""
    if kind == "megapack":
        return {
            "unit_id": unit_id, "site_id": "SITE-01", "timestamp": time_ms,
            "soc_percent": (seq % 1001) / 10, "soh_percent": 90 + (seq % 100) / 10,
            "power_kw": float(seq % 2001 - 1000), "voltage_v": 400 + (seq % 1000) / 8,
            "current_a": (seq % 4001 - 2000) / 4, "temperature_c": 15 + (seq % 300) / 10,
            "state": _STATES[seq % len(_STATES)],
            "fault_codes": ["CELL_OVERTEMP"] if seq % 5 == 4 else [],
        }  # fmt: skip
    return {
        "vehicle_id": unit_id, "fleet_id": "FLEET-01", "timestamp": time_ms,
        "battery_soc_percent": (seq % 1001) / 10, "battery_temp_c": 10 + (seq % 400) / 10,
        "latitude": (seq % 1800) / 10 - 90, "longitude": (seq % 3600) / 10 - 180,
        "speed_kmh": (seq % 1300) / 10, "charging_state": _CHARGING[seq % len(_CHARGING)],
        "charge_power_kw": (seq % 2500) / 10, "tire_pressure_psi": 30 + (seq % 150) / 10,
        "odometer_km": seq * 0.25,
    }  # fmt: skip


def key_of(kind: Kind, item: dict[str, Any]) -> Key:
    """The storage key of a reading."""
    return (kind, item["unit_id" if kind == "megapack" else "vehicle_id"], item["timestamp"])


def values_of(kind: Kind, item: dict[str, Any]) -> tuple[Any, ...]:
    """The values a stored row must carry, in FIELDS order."""
    return tuple(item.get(name) for name in FIELDS[kind])


@dataclass
class Ledger:
    """What was offered, what the gateway acknowledged, and what had to be retried."""

    acked: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    offered: int = 0
    retried_keys: set[Key] = field(default_factory=set)
    refusals: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    abandoned: int = 0

    def record(self, kind: Kind, items: list[dict[str, Any]], *, retried: bool) -> None:
        """Note a batch answered 202."""
        for item in items:
            key = key_of(kind, item)
            self.acked[key] = values_of(kind, item)
            if retried:
                self.retried_keys.add(key)


@dataclass
class LoadGenerator:
    """`workers` devices, half Megapacks and half EVs, together sending `rate` readings/s."""

    client: httpx.AsyncClient
    ledger: Ledger
    run_id: str
    rate: float
    batch_size: int = 10
    workers: int = 16
    retry_for_s: float = 60.0
    base_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000 - 3_600_000)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; batches being retried then still finish (or give up)."""
        await asyncio.gather(*(self._worker(index, stop) for index in range(self.workers)))

    async def _worker(self, index: int, stop: asyncio.Event) -> None:
        kind: Kind = "megapack" if index % 2 == 0 else "ev"
        unit_id = f"CHAOS-{self.run_id}-{kind[0].upper()}{index:02d}"
        interval_s = self.batch_size * self.workers / self.rate
        next_at, seq = time.monotonic() + index * interval_s / self.workers, 0
        while not stop.is_set():
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + interval_s, time.monotonic() - interval_s)
            items = [
                reading(kind, unit_id, self.base_ms + seq + i, seq + i)
                for i in range(self.batch_size)
            ]
            seq += self.batch_size
            await self.send(kind, items)

    async def send(self, kind: Kind, items: list[dict[str, Any]]) -> bool:
        """Post until answered 202 (recorded in the ledger) or a non-retryable answer."""
        self.ledger.offered += len(items)
        give_up_at, delay_s, retried = time.monotonic() + self.retry_for_s, 0.2, False
        while True:
            try:
                response = await self.client.post(
                    f"/v1/telemetry/{kind}", json={"readings": items}, timeout=15
                )
            except httpx.HTTPError as error:
                outcome, wait_s = type(error).__name__, delay_s
            else:
                if response.status_code == 202:
                    self.ledger.record(kind, items, retried=retried)
                    return True
                if response.status_code not in RETRYABLE:
                    self.ledger.unexpected.append(f"{response.status_code} {response.text[:200]}")
                    return False
                outcome = str(response.status_code)
                wait_s = float(response.headers.get("retry-after", delay_s))
            self.ledger.refusals[outcome] += 1
            retried = True
            if time.monotonic() + wait_s > give_up_at:
                self.ledger.abandoned += len(items)
                return False
            await asyncio.sleep(wait_s)
            delay_s = min(delay_s * 2, 2.0)
