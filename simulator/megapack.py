"""One Megapack 2 XL: energy, heat, electrical values, ageing, states and faults.

Nameplates, per-unit traits, ramps and the auxiliary load are in `simulator.physics` (its
docstring states the energy accounting). Power is measured at the AC terminals: positive
discharges to the grid, negative charges.
"""

from __future__ import annotations

import math
import random
from typing import Any

from simulator.faults import FAULT_CODES, FaultLifecycle
from simulator.physics import (
    MEGAPACK_2H,
    MEGAPACK_4H,
    MegapackModel,
    UnitTraits,
    cell_flow,
    heat_step,
    ramp,
    standby_aux_kw,
    time_of_use,
)

__all__ = ["FAULT_CODES", "MEGAPACK_2H", "MEGAPACK_4H", "Megapack", "MegapackModel", "time_of_use"]

OPERATING_MODES = ("IDLE", "CHARGING", "DISCHARGING", "STANDBY", "MAINTENANCE")

NOMINAL_AC_V = 480.0
SQRT3 = math.sqrt(3.0)
THERMAL_MASS_KJ_PER_K = 25_000.0  # ~25 t of cells, modules and coolant
CALENDAR_FADE_PER_S = 2.0 / (365 * 86_400)  # % SOH per second (~2 %/year)
CYCLE_FADE_PER_CYCLE = 0.004  # % SOH per full equivalent cycle
AUX_JITTER = 0.05  # σ of the auxiliaries' step-to-step wander (chiller, fans), share of draw
PCS_OFF_STATES = frozenset({"FAULT", "OFFLINE"})


class Megapack(FaultLifecycle):
    """State and physics of one unit; `step` advances it, `reading` reports it (its faults,
    crews and restarts: simulator.faults.FaultLifecycle)."""

    __slots__ = (
        "_efficiency", "_noise", "_reference_kw", "aux_energy_kwh", "comms_restored",
        "dispatch_fraction", "dispatch_offset_h", "energy_charged_kwh", "energy_discharged_kwh",
        "fault_codes", "maintenance_at_ms", "max_soc_percent", "min_soc_percent",
        "mode_override", "model", "offline_until_ms", "power_kw", "setpoint_kw",
        "silent_until_ms", "site_id", "soc_percent", "soh_percent", "state", "temperature_c",
        "thermal_mass_kj_per_k", "traits", "unit_id",
    )  # fmt: skip

    def __init__(
        self,
        *,
        unit_id: str,
        site_id: str,
        model: MegapackModel,
        soc_percent: float,
        soh_percent: float,
        temperature_c: float,
        dispatch_offset_h: float = 0.0,
        dispatch_fraction: float = 1.0,
        traits: UnitTraits | None = None,
        noise: random.Random | None = None,
    ) -> None:
        self.unit_id, self.site_id, self.model = unit_id, site_id, model
        self.traits = traits or UnitTraits.nominal(model)
        self._efficiency = self.traits.one_way_efficiency
        self._noise = noise  # None: no regulation noise, no wander of the auxiliaries
        self.soc_percent, self.soh_percent = soc_percent, soh_percent
        self.temperature_c = temperature_c
        self.dispatch_offset_h, self.dispatch_fraction = dispatch_offset_h, dispatch_fraction
        self.min_soc_percent, self.max_soc_percent = 5.0, 95.0
        self.power_kw = 0.0  # metered at the AC terminals, as reported
        self._reference_kw = 0.0  # what the PCS regulates to, moving at the ramp rate
        self.setpoint_kw = 0.0
        self.state = "IDLE"
        self.mode_override: str | None = None  # an operator's mode; beats time-of-use dispatch
        self.fault_codes: list[str] = []
        self.maintenance_at_ms: int | None = None
        self.offline_until_ms = 0
        self.silent_until_ms = 0
        self.comms_restored = False
        self.thermal_mass_kj_per_k = THERMAL_MASS_KJ_PER_K
        self.energy_charged_kwh = 0.0  # AC energy the PCS took from the grid
        self.energy_discharged_kwh = 0.0  # AC energy the PCS delivered to the grid
        self.aux_energy_kwh = 0.0  # drawn by the auxiliaries with the PCS off (never stored)

    @property
    def rated_power_kw(self) -> float:
        """This unit's own rated power."""
        return self.traits.rated_power_kw

    @property
    def capacity_kwh(self) -> float:
        """This unit's own nameplate energy."""
        return self.traits.capacity_kwh

    @property
    def stored_kwh(self) -> float:
        """Energy in the cells: SOC of the usable capacity (nameplate × SOH)."""
        return self.soc_percent / 100.0 * self.traits.capacity_kwh * self.soh_percent / 100.0

    @property
    def faulted(self) -> bool:
        """In FAULT: no power until reset or maintenance."""
        return self.state == "FAULT"

    def step(self, *, dt_s: float, now_ms: int, hour: float, ambient_c: float) -> None:
        """Advance `dt_s` seconds: dispatch, energy, heat, ageing, maintenance."""
        self._service(now_ms)
        target_kw = self._target(hour)
        pcs_on = self._pcs_on(target_kw)
        mean_kw = self._regulate(target_kw, dt_s) if pcs_on else 0.0
        cell_kwh = self._integrate(mean_kw, dt_s)
        cooling_kw, heating_kw = self._heat(mean_kw, dt_s, ambient_c)
        if not pcs_on:  # the auxiliaries draw from the grid; nothing reaches the cells
            self._reference_kw = aux_kw = 0.0
            if not self.crew_on_site:  # a crew isolates the unit
                aux_kw = standby_aux_kw(
                    self.traits, ambient_c=ambient_c, cooling_kw=cooling_kw, heating_kw=heating_kw
                )
                if self._noise is not None:
                    aux_kw *= 1.0 + AUX_JITTER * max(-3.0, min(3.0, self._noise.gauss(0.0, 1.0)))
            self.power_kw = -aux_kw
            self.aux_energy_kwh += aux_kw * dt_s / 3600.0
        self._age(cell_kwh, dt_s)
        if self.state in ("FAULT", "OFFLINE") or self.crew_on_site:
            return
        if self.mode_override == "MAINTENANCE":
            self.state = "MAINTENANCE"
        else:
            self.state = self._state_for(target_kw)

    def _pcs_on(self, target_kw: float) -> bool:
        """The PCS runs while there is power to deliver, to ramp down, or IDLE to hold at 0."""
        if self.state in PCS_OFF_STATES or self.crew_on_site:
            return False
        if self.mode_override == "MAINTENANCE":
            return False
        return target_kw != 0 or self._reference_kw != 0 or self.mode_override == "IDLE"

    def _target(self, hour: float) -> float:
        if self.state in ("FAULT", "OFFLINE") or self.crew_on_site:
            return 0.0
        if self.mode_override == "MAINTENANCE":
            return 0.0
        if self.mode_override is not None:
            target = self.setpoint_kw
        else:
            signal = time_of_use(hour + self.dispatch_offset_h)
            target = signal * self.dispatch_fraction * self.traits.rated_power_kw
        at_lower = target > 0 and self.soc_percent <= self.min_soc_percent
        if at_lower or (target < 0 and self.soc_percent >= self.max_soc_percent):
            target = 0.0
        return target

    def _state_for(self, target_kw: float) -> str:
        """The state the power shows: while the PCS ramps, the way power flows."""
        if self._reference_kw > 0:
            return "DISCHARGING"
        if self._reference_kw < 0:
            return "CHARGING"
        if self.mode_override in ("IDLE", "STANDBY"):
            return self.mode_override
        if target_kw != 0:  # no ramp at all: cannot happen with a positive rate
            return "DISCHARGING" if target_kw > 0 else "CHARGING"
        wanted = self.mode_override == "CHARGING" or self.mode_override == "DISCHARGING"
        return "STANDBY" if wanted or self.mode_override is None else "IDLE"

    def _regulate(self, target_kw: float, dt_s: float) -> float:
        """Ramp the reference; metered power is it plus regulation noise. The step's mean kW."""
        self._reference_kw, mean_kw = ramp(
            self._reference_kw, target_kw, self.traits.ramp_kw_per_s, dt_s
        )
        noise_kw = 0.0
        if self._noise is not None:
            sigma = self.traits.noise_kw
            bound = 3.0 * sigma  # and noise never turns the flow around (state and sign agree)
            if self._reference_kw != 0:
                bound = min(bound, 0.99 * abs(self._reference_kw))
            noise_kw = max(-bound, min(bound, self._noise.gauss(0.0, sigma)))
        self.power_kw = self._reference_kw + noise_kw
        return mean_kw + noise_kw

    def _integrate(self, mean_kw: float, dt_s: float) -> float:
        """Move SOC by what the cells gain or give (η each way); kWh through the cells."""
        usable_kwh = self.traits.capacity_kwh * self.soh_percent / 100.0
        self.soc_percent, grid_kwh, cell_kwh = cell_flow(
            mean_kw, dt_s, soc_percent=self.soc_percent, usable_kwh=usable_kwh,
            efficiency=self._efficiency, limits=(self.min_soc_percent, self.max_soc_percent),
        )  # fmt: skip
        if grid_kwh == 0:
            return cell_kwh
        if mean_kw < 0:
            self.energy_charged_kwh += grid_kwh
        else:
            self.energy_discharged_kwh += grid_kwh
        flowed_kw = math.copysign(grid_kwh * 3600.0 / dt_s, mean_kw)
        if abs(flowed_kw) < abs(mean_kw) - 1e-9:  # at a SOC limit: report what really flowed
            self.power_kw = self._reference_kw = flowed_kw
        return cell_kwh

    def _age(self, cell_kwh: float, dt_s: float) -> None:
        cycles = cell_kwh / (2.0 * self.traits.capacity_kwh)
        hot = 2.0 if self.temperature_c > 35.0 else 1.0
        self.soh_percent -= hot * (CALENDAR_FADE_PER_S * dt_s + CYCLE_FADE_PER_CYCLE * cycles)

    def _heat(self, mean_kw: float, dt_s: float, ambient_c: float) -> tuple[float, float]:
        """Losses heat the cells, the chiller cools them; (cooling, heating) kW of heat moved."""
        losses_kw = abs(mean_kw) * (1.0 - self._efficiency)
        self.temperature_c, cooling_kw, heating_kw = heat_step(
            self.temperature_c, losses_kw=losses_kw, ambient_c=ambient_c, dt_s=dt_s,
            thermal_mass_kj_per_k=self.thermal_mass_kj_per_k,
            fan_error="FAN_ERROR" in self.fault_codes, powered=self.state != "OFFLINE",
        )  # fmt: skip
        return cooling_kw, heating_kw

    def reports(self, now_ms: int) -> bool:
        """False while communication is lost."""
        return now_ms >= self.silent_until_ms

    def reading(self, timestamp_ms: int) -> dict[str, Any]:
        """The telemetry reading, in the gateway's JSON shape."""
        power = self.power_kw
        rated = self.traits.rated_power_kw
        voltage = NOMINAL_AC_V * (
            1.0 + 0.03 * (self.soc_percent - 50.0) / 50.0 + 0.01 * power / rated
        )
        codes = list(self.fault_codes)
        if self.comms_restored:
            codes.append("COMMUNICATION_LOSS")
            self.comms_restored = False
        return {
            "unit_id": self.unit_id,
            "site_id": self.site_id,
            "timestamp": timestamp_ms,
            "soc_percent": round(self.soc_percent, 3),
            "soh_percent": round(self.soh_percent, 4),
            "power_kw": round(power, 3),
            "voltage_v": round(voltage, 2),
            "current_a": round(power * 1000.0 / (SQRT3 * voltage), 2),
            "temperature_c": round(self.temperature_c, 2),
            "state": self.state,
            "fault_codes": codes,
            "rated_power_kw": self.traits.rated_power_kw,
            "capacity_kwh": self.traits.capacity_kwh,
        }
