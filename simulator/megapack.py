"""One Megapack 2 XL: energy, heat, electrical values, ageing, states and faults.

Figures are Tesla's published Megapack 2 XL ones: the 2-hour unit 1,927 kW / 3,854 kWh at
92.0 % round-trip efficiency, the 4-hour unit 979 kW / 3,916 kWh at 93.7 %, 480 V AC.
Power is measured at the AC terminals: positive discharges to the grid, negative charges.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

FAULT_CODES = (
    "CELL_IMBALANCE",
    "INVERTER_FAULT",
    "GROUND_FAULT",
    "CONTACTOR_ERROR",
    "FAN_ERROR",
    "COMMUNICATION_LOSS",
    "DC_BUS_OVERVOLTAGE",
    "BMS_FAULT",
)
FAULT_WEIGHTS = (0.18, 0.18, 0.08, 0.12, 0.16, 0.16, 0.06, 0.06)
WARNINGS = frozenset({"FAN_ERROR"})  # the unit keeps running, with less cooling
OPERATING_MODES = ("IDLE", "CHARGING", "DISCHARGING", "STANDBY", "MAINTENANCE")

NOMINAL_AC_V = 480.0
SQRT3 = math.sqrt(3.0)
THERMAL_MASS_KJ_PER_K = 25_000.0  # ~25 t of cells, modules and coolant
PASSIVE_KW_PER_K = 0.4  # enclosure to ambient
COOLING_KW_PER_K = 20.0  # chiller gain above its set point
COOLING_MAX_KW = 120.0
COOLING_SETPOINT_C = 25.0
HEATER_SETPOINT_C = 10.0
HEATER_MAX_KW = 30.0
FAN_ERROR_COOLING = 0.15  # share of cooling left with a failed fan
OVER_TEMPERATURE_C = 55.0
RESET_BELOW_C = 45.0
CALENDAR_FADE_PER_S = 2.0 / (365 * 86_400)  # % SOH per second (~2 %/year)
CYCLE_FADE_PER_CYCLE = 0.004  # % SOH per full equivalent cycle
RAMP_PER_S = 1.0  # share of rated power the inverter can change per second
OFFLINE_AFTER_MAINTENANCE_S = 60.0


@dataclass(frozen=True, slots=True)
class MegapackModel:
    """A product variant's nameplate."""

    name: str
    rated_power_kw: float
    capacity_kwh: float
    round_trip_efficiency: float

    @property
    def one_way_efficiency(self) -> float:
        """Charge and discharge each lose the same share: the square root of round trip."""
        return math.sqrt(self.round_trip_efficiency)


MEGAPACK_2H = MegapackModel("2-hour", 1_927.0, 3_854.0, 0.920)
MEGAPACK_4H = MegapackModel("4-hour", 979.0, 3_916.0, 0.937)


def time_of_use(hour: float) -> float:
    """Dispatch signal of a daily price curve: -1 charge hard (cheap), +1 discharge (peak)."""
    hour %= 24.0
    if hour < 5.0:
        return -0.2  # night: cheap
    if 7.0 <= hour < 9.0:
        return 0.3  # morning peak
    if 10.5 <= hour < 15.0:
        return -0.35  # solar midday: cheapest
    if 17.0 <= hour < 21.0:
        return 0.5  # evening peak: most expensive
    return 0.0


class Megapack:
    """State and physics of one unit; `step` advances it, `reading` reports it."""

    __slots__ = (
        "_efficiency", "comms_restored", "dispatch_fraction", "dispatch_offset_h",
        "energy_charged_kwh", "energy_discharged_kwh", "fault_codes", "maintenance_at_ms",
        "max_soc_percent", "min_soc_percent", "mode_override", "model", "offline_until_ms",
        "power_kw", "setpoint_kw", "silent_until_ms", "site_id", "soc_percent", "soh_percent",
        "state", "temperature_c", "thermal_mass_kj_per_k", "unit_id",
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
    ) -> None:
        self.unit_id, self.site_id, self.model = unit_id, site_id, model
        self._efficiency = model.one_way_efficiency
        self.soc_percent, self.soh_percent, self.temperature_c = (
            soc_percent,
            soh_percent,
            temperature_c,
        )
        self.dispatch_offset_h, self.dispatch_fraction = dispatch_offset_h, dispatch_fraction
        self.min_soc_percent, self.max_soc_percent = 5.0, 95.0
        self.power_kw = 0.0
        self.setpoint_kw = 0.0
        self.state = "IDLE"
        self.mode_override: str | None = None  # an operator's mode; beats time-of-use dispatch
        self.fault_codes: list[str] = []
        self.maintenance_at_ms: int | None = None
        self.offline_until_ms = 0
        self.silent_until_ms = 0
        self.comms_restored = False
        self.thermal_mass_kj_per_k = THERMAL_MASS_KJ_PER_K
        self.energy_charged_kwh = 0.0  # AC energy taken from the grid
        self.energy_discharged_kwh = 0.0  # AC energy delivered to the grid

    @property
    def rated_power_kw(self) -> float:
        """The nameplate power."""
        return self.model.rated_power_kw

    @property
    def faulted(self) -> bool:
        """In FAULT: no power until reset or maintenance."""
        return self.state == "FAULT"

    def step(self, *, dt_s: float, now_ms: int, hour: float, ambient_c: float) -> None:
        """Advance `dt_s` seconds: dispatch, energy, heat, ageing, maintenance."""
        self._service(now_ms)
        target_kw = self._target(hour)
        self._ramp(target_kw, dt_s)
        self._integrate(dt_s)
        self._heat(dt_s, ambient_c)
        if self.state in ("FAULT", "OFFLINE") or self.crew_on_site:
            return
        if self.mode_override == "MAINTENANCE":
            self.state = "MAINTENANCE"
        else:
            self.state = self._state_for(target_kw)

    @property
    def crew_on_site(self) -> bool:
        """A maintenance crew is working on the unit (after a fault or a warning)."""
        return self.state == "MAINTENANCE" and self.maintenance_at_ms is not None

    def _target(self, hour: float) -> float:
        if self.state in ("FAULT", "OFFLINE") or self.crew_on_site:
            return 0.0
        if self.mode_override == "MAINTENANCE":
            return 0.0
        if self.mode_override is not None:
            target = self.setpoint_kw
        else:
            signal = time_of_use(hour + self.dispatch_offset_h)
            target = signal * self.dispatch_fraction * self.model.rated_power_kw
        at_lower = target > 0 and self.soc_percent <= self.min_soc_percent
        if at_lower or (target < 0 and self.soc_percent >= self.max_soc_percent):
            target = 0.0
        return target

    def _state_for(self, target_kw: float) -> str:
        if self.mode_override in ("IDLE", "STANDBY"):
            return self.mode_override
        if target_kw > 0:
            return "DISCHARGING"
        if target_kw < 0:
            return "CHARGING"
        wanted = self.mode_override == "CHARGING" or self.mode_override == "DISCHARGING"
        return "STANDBY" if wanted or self.mode_override is None else "IDLE"

    def _ramp(self, target_kw: float, dt_s: float) -> None:
        limit = RAMP_PER_S * self.model.rated_power_kw * dt_s
        delta = max(-limit, min(limit, target_kw - self.power_kw))
        self.power_kw += delta

    def _integrate(self, dt_s: float) -> None:
        """Move SOC by the energy the cells gain or give; losses sit on the grid side."""
        usable_kwh = self.model.capacity_kwh * self.soh_percent / 100.0
        hours = dt_s / 3600.0
        power = self.power_kw
        if power < 0:  # charging: the cells get less than the grid gives
            room_kwh = (self.max_soc_percent - self.soc_percent) / 100.0 * usable_kwh
            cell_kwh = min(-power * self._efficiency * hours, max(room_kwh, 0.0))
            grid_kwh = cell_kwh / self._efficiency
            self.energy_charged_kwh += grid_kwh
            self.soc_percent += cell_kwh / usable_kwh * 100.0
        elif power > 0:  # discharging: the cells give more than the grid gets
            left_kwh = (self.soc_percent - self.min_soc_percent) / 100.0 * usable_kwh
            cell_kwh = min(power / self._efficiency * hours, max(left_kwh, 0.0))
            grid_kwh = cell_kwh * self._efficiency
            self.energy_discharged_kwh += grid_kwh
            self.soc_percent -= cell_kwh / usable_kwh * 100.0
        else:
            cell_kwh = grid_kwh = 0.0
        if hours > 0 and power != 0:
            self.power_kw = math.copysign(grid_kwh / hours, power)  # what really flowed
        self.soc_percent = min(100.0, max(0.0, self.soc_percent))
        cycles = cell_kwh / (2.0 * self.model.capacity_kwh)
        hot = 2.0 if self.temperature_c > 35.0 else 1.0
        self.soh_percent -= hot * (CALENDAR_FADE_PER_S * dt_s + CYCLE_FADE_PER_CYCLE * cycles)

    def _heat(self, dt_s: float, ambient_c: float) -> None:
        """Losses heat the cells; the chiller and the enclosure take heat away."""
        temperature = self.temperature_c
        losses_kw = abs(self.power_kw) * (1.0 - self._efficiency)
        derate = 1.0 if ambient_c <= 35.0 else max(0.5, 1.0 - (ambient_c - 35.0) / 30.0)
        cooling_kw = min(COOLING_MAX_KW * derate, COOLING_KW_PER_K * (temperature - 25.0))
        cooling_kw = max(0.0, cooling_kw)
        if "FAN_ERROR" in self.fault_codes:
            cooling_kw *= FAN_ERROR_COOLING
        heating_kw = 0.0
        if temperature < HEATER_SETPOINT_C and self.state != "OFFLINE":
            heating_kw = min(HEATER_MAX_KW, COOLING_KW_PER_K * (HEATER_SETPOINT_C - temperature))
        net_kw = losses_kw + heating_kw - cooling_kw + PASSIVE_KW_PER_K * (ambient_c - temperature)
        self.temperature_c = temperature + net_kw * dt_s / self.thermal_mass_kj_per_k

    def _service(self, now_ms: int) -> None:
        """Maintenance crews arrive for faults; units restart (OFFLINE) after maintenance."""
        if self.state == "OFFLINE" and now_ms >= self.offline_until_ms:
            self.state = "IDLE"
        if self.maintenance_at_ms is None or now_ms < self.maintenance_at_ms:
            return
        if self.crew_on_site:
            self.fault_codes = []
            self.maintenance_at_ms = None
            self.state = "OFFLINE"
            self.offline_until_ms = now_ms + int(OFFLINE_AFTER_MAINTENANCE_S * 1000)
        elif self.state != "MAINTENANCE":  # the crew arrives
            self.state = "MAINTENANCE"
            self.power_kw = 0.0
            self.maintenance_at_ms = now_ms + 30 * 60_000  # the crew works half an hour

    def roll_faults(
        self, *, rng: random.Random, fault_rate_per_h: float, dt_s: float, now_ms: int
    ) -> None:
        """Random alarms at `fault_rate_per_h`; over-temperature from the physics."""
        if self.state in ("FAULT", "MAINTENANCE", "OFFLINE"):
            return
        if self.temperature_c >= OVER_TEMPERATURE_C:
            self.fault("OVER_TEMPERATURE", rng=rng, now_ms=now_ms)
            return
        if fault_rate_per_h <= 0 or rng.random() >= fault_rate_per_h * dt_s / 3600.0:
            return
        code = rng.choices(FAULT_CODES, weights=FAULT_WEIGHTS)[0]
        if code == "COMMUNICATION_LOSS":
            self.silent_until_ms = now_ms + rng.randint(20, 180) * 1000
            self.comms_restored = True
        elif code in WARNINGS:
            if code not in self.fault_codes:
                self.fault_codes.append(code)
            self.maintenance_at_ms = now_ms + rng.randint(60, 240) * 60_000
        else:
            self.fault(code, rng=rng, now_ms=now_ms)

    def fault(self, code: str, *, rng: random.Random, now_ms: int) -> None:
        """Trip: contactors open, power stops, a crew is called."""
        self.state = "FAULT"
        self.power_kw = 0.0
        if code not in self.fault_codes:
            self.fault_codes.append(code)
        self.maintenance_at_ms = now_ms + rng.randint(30, 180) * 60_000

    def reset_fault(self) -> str | None:
        """Clear a fault on request; the reason it cannot be cleared, or None."""
        if self.state != "FAULT":
            return f"unit is {self.state}, not in FAULT"
        if self.temperature_c >= RESET_BELOW_C:
            return f"temperature {self.temperature_c:.1f} °C is still above {RESET_BELOW_C:g} °C"
        self.state = "IDLE"
        self.fault_codes = []
        self.maintenance_at_ms = None
        return None

    def reports(self, now_ms: int) -> bool:
        """False while communication is lost."""
        return now_ms >= self.silent_until_ms

    def reading(self, timestamp_ms: int) -> dict[str, Any]:
        """The telemetry reading, in the gateway's JSON shape."""
        power = self.power_kw
        rated = self.model.rated_power_kw
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
            "power_kw": round(power, 2),
            "voltage_v": round(voltage, 2),
            "current_a": round(power * 1000.0 / (SQRT3 * voltage), 2),
            "temperature_c": round(self.temperature_c, 2),
            "state": self.state,
            "fault_codes": codes,
            "rated_power_kw": self.model.rated_power_kw,
            "capacity_kwh": self.model.capacity_kwh,
        }
