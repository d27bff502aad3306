"""The whole simulated fleet: Megapacks grouped in sites and EVs grouped in fleets."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from simulator.ev import CITIES, EV_FAULT_SHARE, Ev
from simulator.megapack import MEGAPACK_2H, MEGAPACK_4H, Megapack
from simulator.physics import Physics, UnitTraits

DAY_MS = 86_400_000
Reading = dict[str, Any]


@dataclass(slots=True)
class Site:
    """A group of Megapacks under one climate (and one local time of day)."""

    site_id: str
    mean_ambient_c: float
    utc_offset_h: float
    units: list[Megapack] = field(default_factory=list)

    def ambient_c(self, local_hour: float) -> float:
        """Air temperature: a daily swing, coldest before dawn; inside −30..50 °C."""
        swing = 7.0 * math.cos((local_hour - 15.0) / 24.0 * 2.0 * math.pi)
        return max(-30.0, min(50.0, self.mean_ambient_c + swing))


@dataclass(slots=True)
class Emission:
    """One interval's readings, by site and by fleet."""

    sites: dict[str, list[Reading]]
    fleets: dict[str, list[Reading]]

    @property
    def count(self) -> int:
        """How many readings."""
        return sum(map(len, self.sites.values())) + sum(map(len, self.fleets.values()))


class Fleet:
    """Builds units from a seed and steps them all; the same seed and times give the same data."""

    def __init__(
        self,
        *,
        megapack_count: int,
        ev_count: int,
        site_count: int,
        fleet_count: int,
        seed: int,
        fault_rate_per_h: float,
        faulted_units: tuple[str, ...] = (),
        id_prefix: str = "",
        physics: Physics | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.physics = physics = physics or Physics()
        self.fault_rate_per_h = fault_rate_per_h
        rng = self.rng
        self.sites = [
            Site(f"SITE-{s + 1:02d}", rng.uniform(-5.0, 30.0), float(rng.choice((-8, -5, 0, 1, 8))))
            for s in range(site_count)
        ]
        self.megapacks: dict[str, Megapack] = {}
        for index in range(megapack_count):
            site = self.sites[index * site_count // max(megapack_count, 1)]
            unit_id = f"{id_prefix}MP-{index + 1:04d}"
            model = MEGAPACK_2H if rng.random() < 0.6 else MEGAPACK_4H
            # Each unit's own generator: its traits and noise do not shift the fleet's draws.
            own = random.Random(f"{seed}:{unit_id}")
            unit = Megapack(
                unit_id=unit_id,
                site_id=site.site_id,
                model=model,
                traits=UnitTraits.drawn(model, physics, own),
                noise=own,
                soc_percent=rng.uniform(25.0, 80.0),
                soh_percent=rng.uniform(94.0, 100.0),
                temperature_c=site.mean_ambient_c * 0.3 + 18.0,
                dispatch_offset_h=rng.uniform(-0.75, 0.75),
                dispatch_fraction=rng.uniform(0.55, 1.0),
            )
            site.units.append(unit)
            self.megapacks[unit.unit_id] = unit
        self.fleet_ids = [f"FLEET-{f + 1:02d}" for f in range(fleet_count)]
        self.evs: dict[str, Ev] = {}
        for index in range(ev_count):
            fleet = index * fleet_count // max(ev_count, 1)
            vehicle = Ev(
                vehicle_id=f"{id_prefix}EV-{index + 1:04d}",
                fleet_id=self.fleet_ids[fleet],
                city=CITIES[fleet % len(CITIES)],
                rng=rng,
            )
            self.evs[vehicle.vehicle_id] = vehicle
        for unit_id in faulted_units:
            if unit_id in self.megapacks:
                self.megapacks[unit_id].fault("INVERTER_FAULT", rng=rng, now_ms=0)
                self.megapacks[unit_id].maintenance_at_ms = None  # stays until reset
        self.last_ms: int | None = None

    def step(self, now_ms: int, *, default_dt_s: float = 1.0) -> Emission:
        """Advance every unit to `now_ms` and collect the readings of those that report."""
        dt_s = default_dt_s if self.last_ms is None else max(0.0, (now_ms - self.last_ms) / 1000)
        self.last_ms = now_ms
        rng, rate = self.rng, self.fault_rate_per_h
        utc_hour = (now_ms % DAY_MS) / 3_600_000
        sites: dict[str, list[Reading]] = {}
        ambient_sum = 0.0
        for site in self.sites:
            hour = utc_hour + site.utc_offset_h
            ambient = site.ambient_c(hour % 24.0)
            ambient_sum += ambient
            batch = sites[site.site_id] = []
            for unit in site.units:
                unit.step(dt_s=dt_s, now_ms=now_ms, hour=hour, ambient_c=ambient)
                unit.roll_faults(rng=rng, fault_rate_per_h=rate, dt_s=dt_s, now_ms=now_ms)
                if now_ms >= unit.silent_until_ms:
                    batch.append(unit.reading(now_ms))
        fleets: dict[str, list[Reading]] = {fleet_id: [] for fleet_id in self.fleet_ids}
        ev_ambient = ambient_sum / len(self.sites)
        ev_fault_p = rate * EV_FAULT_SHARE * dt_s / 3600.0
        for vehicle in self.evs.values():
            vehicle.step(
                dt_s=dt_s, now_ms=now_ms, ambient_c=ev_ambient, rng=rng, fault_p=ev_fault_p
            )
            fleets[vehicle.fleet_id].append(vehicle.reading(now_ms))
        return Emission(
            sites={k: v for k, v in sites.items() if v},
            fleets={k: v for k, v in fleets.items() if v},
        )

    def unit_keys(self) -> list[tuple[str, str]]:
        """(kind, unit id) of every unit, for the command bindings."""
        return [("megapack", u) for u in self.megapacks] + [("ev", v) for v in self.evs]
