"""Energy accounting over telemetry, as a KPI engine does it: the reference for the simulator.

Power is integrated between consecutive readings of a unit (trapezoid), the positive part as
discharged and the negative part as charged energy; stored energy is SOC × capacity × SOH.
Round-trip efficiency corrected for the change in stored energy ΔE: with the same efficiency
η each way, E_charged × η − E_discharged / η = ΔE, so

    η = (ΔE + √(ΔE² + 4 · E_charged · E_discharged)) / (2 · E_charged),   RTE = η²

which is exact for the simulator's physics whatever the SOC does over the window (the
simpler (E_discharged + ΔE) / E_charged is off by ΔE × (1 − η) / E_charged).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PCS_ON_STATES = frozenset({"CHARGING", "DISCHARGING", "IDLE"})


@dataclass(slots=True)
class UnitEnergy:
    """One unit's integrated energy over a window of its readings."""

    charged_kwh: float = 0.0
    discharged_kwh: float = 0.0
    # the same, over the intervals where the PCS ran at either end (CHARGING/DISCHARGING/IDLE)
    pcs_charged_kwh: float = 0.0
    pcs_discharged_kwh: float = 0.0
    first_stored_kwh: float | None = None
    last_stored_kwh: float = 0.0
    readings: int = 0
    _last: tuple[int, float, str] | None = field(default=None, repr=False)

    @property
    def stored_change_kwh(self) -> float:
        """Stored energy at the last reading less at the first."""
        return self.last_stored_kwh - (self.first_stored_kwh or 0.0)

    def rte(self, *, pcs_only: bool = False) -> float:
        """Round-trip efficiency corrected for the change in stored energy (see the module)."""
        charged = self.pcs_charged_kwh if pcs_only else self.charged_kwh
        discharged = self.pcs_discharged_kwh if pcs_only else self.discharged_kwh
        return round_trip_efficiency(charged, discharged, self.stored_change_kwh)

    def add(self, reading: Mapping[str, Any], *, max_gap_s: float) -> None:
        """Take the unit's next reading (in time order)."""
        at_ms, power, state = (
            int(reading["timestamp"]),
            float(reading["power_kw"]),
            reading["state"],
        )
        stored = (
            reading["soc_percent"] / 100 * reading["capacity_kwh"] * reading["soh_percent"] / 100
        )
        if self.first_stored_kwh is None:
            self.first_stored_kwh = stored
        self.last_stored_kwh = stored
        self.readings += 1
        if self._last is not None:
            last_ms, last_power, last_state = self._last
            dt_s = (at_ms - last_ms) / 1000
            if 0 < dt_s <= max_gap_s:  # never across a gap
                kwh = (last_power + power) / 2 * dt_s / 3600
                pcs = state in PCS_ON_STATES or last_state in PCS_ON_STATES
                if kwh > 0:
                    self.discharged_kwh += kwh
                    self.pcs_discharged_kwh += kwh if pcs else 0.0
                else:
                    self.charged_kwh -= kwh
                    self.pcs_charged_kwh -= kwh if pcs else 0.0
        self._last = (at_ms, power, state)


def round_trip_efficiency(
    charged_kwh: float, discharged_kwh: float, stored_change_kwh: float
) -> float:
    """RTE = η², η solving charged × η − discharged / η = stored change."""
    if charged_kwh <= 0:
        return math.nan
    d = stored_change_kwh
    eta = (d + math.sqrt(d * d + 4 * charged_kwh * discharged_kwh)) / (2 * charged_kwh)
    return eta * eta


def rte_percent_of(charged_kwh: float, discharged_kwh: float, stored_change_kwh: float) -> float:
    """The KPI engine's `rte_percent` for those totals, by this module's formula."""
    return round_trip_efficiency(charged_kwh, discharged_kwh, stored_change_kwh) * 100


def integrate(
    readings: Iterable[Mapping[str, Any]], *, max_gap_s: float = 30.0
) -> dict[str, UnitEnergy]:
    """Per unit, the energy of Megapack readings (any order: sorted by time per unit here)."""
    ordered = sorted(readings, key=lambda r: (r["unit_id"], r["timestamp"]))
    units: dict[str, UnitEnergy] = {}
    for reading in ordered:
        units.setdefault(reading["unit_id"], UnitEnergy()).add(reading, max_gap_s=max_gap_s)
    return units
