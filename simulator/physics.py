"""Megapack figures and pure physics: nameplates, each unit's own traits, ramps, auxiliary load.

Figures are Tesla's published Megapack 2 XL ones: the 2-hour unit 1,927 kW / 3,854 kWh at
92.0 % round-trip efficiency, the 4-hour unit 979 kW / 3,916 kWh at 93.7 %, 480 V AC.

Energy accounting (what a KPI engine integrating `power_kw` must get back): power is metered
at the unit's AC terminals. While the power conversion system (PCS) runs, charging at P kW
puts P × η kWh per hour into the cells and discharging at P kW takes P / η out, with
η = √RTE each way (so a full round trip returns RTE); the thermal system's electricity while
cycling is inside that efficiency, as in the quoted RTE. With the PCS off (STANDBY, FAULT,
OFFLINE, MAINTENANCE without a crew) the unit's auxiliaries — controls, fans, the chiller,
more of it when hot, the heater when cold — draw from the grid: `power_kw` is −aux, a few kW,
and none of it reaches the cells. A KPI over all readings therefore counts the standby draw
as charged energy that is never stored (the honest figure a meter would give); see
docs/OPERATIONS.md for its size over a day.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


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

COOLING_SETPOINT_C = 25.0
PASSIVE_KW_PER_K = 0.4  # enclosure to ambient
COOLING_KW_PER_K = 20.0  # chiller gain above its set point
COOLING_MAX_KW = 120.0
HEATER_SETPOINT_C = 10.0
HEATER_MAX_KW = 30.0
FAN_ERROR_COOLING = 0.15  # share of cooling left with a failed fan
CHILLER_COP_AT_25_C = 3.5  # heat removed per kW of electricity, falling as the air warms
CHILLER_COP_PER_K = 0.06
CHILLER_COP_MIN = 1.5
HOT_FANS_PER_K = 0.02  # the base load's fans work harder above 25 °C: +2 % per K


@dataclass(frozen=True, slots=True)
class Physics:
    """Fleet-wide physics settings (SIM_RAMP_PERCENT_PER_S, SIM_AUX_KW, SIM_NOISE_PERCENT)."""

    ramp_share_per_s: float = 0.10  # share of rated power the PCS changes per second
    aux_base_kw: float = 3.0  # controls, BMS, fans, PCS standby: the draw at 25 °C
    noise_share: float = 0.001  # σ of regulation noise, share of rated power
    spread: float = 1.0  # scale of the per-unit variation (0 = every unit on nameplate)


@dataclass(frozen=True, slots=True)
class UnitTraits:
    """One unit's own figures: its model's nameplate and the fleet physics, within spreads."""

    rated_power_kw: float
    capacity_kwh: float
    round_trip_efficiency: float
    ramp_kw_per_s: float
    aux_base_kw: float
    noise_kw: float  # σ of the regulation noise
    chiller_cop_scale: float = 1.0

    @property
    def one_way_efficiency(self) -> float:
        """η of charge and of discharge."""
        return math.sqrt(self.round_trip_efficiency)

    @classmethod
    def nominal(cls, model: MegapackModel, physics: Physics | None = None) -> UnitTraits:
        """Exactly the nameplate and the fleet settings."""
        p = physics or Physics()
        return cls(
            rated_power_kw=model.rated_power_kw,
            capacity_kwh=model.capacity_kwh,
            round_trip_efficiency=model.round_trip_efficiency,
            ramp_kw_per_s=p.ramp_share_per_s * model.rated_power_kw,
            aux_base_kw=p.aux_base_kw,
            noise_kw=p.noise_share * model.rated_power_kw,
        )

    @classmethod
    def drawn(cls, model: MegapackModel, physics: Physics, rng: random.Random) -> UnitTraits:
        """A unit off the line: power ±0.5 %, capacity ±1 %, RTE ±0.2 points, ramp ±20 %,
        auxiliaries ±15 % (each uniform, times `physics.spread`)."""
        s = physics.spread

        def vary(share: float) -> float:
            return 1.0 + s * rng.uniform(-share, share)

        nominal = cls.nominal(model, physics)
        rte = model.round_trip_efficiency + s * rng.uniform(-0.002, 0.002)
        return cls(
            rated_power_kw=float(round(model.rated_power_kw * vary(0.005))),
            capacity_kwh=float(round(model.capacity_kwh * vary(0.01))),
            round_trip_efficiency=round(min(rte, 0.999), 4),
            ramp_kw_per_s=nominal.ramp_kw_per_s * vary(0.2),
            aux_base_kw=nominal.aux_base_kw * vary(0.15),
            noise_kw=nominal.noise_kw * vary(0.3),
            chiller_cop_scale=vary(0.1),
        )


def ramp(
    start_kw: float, target_kw: float, rate_kw_per_s: float, dt_s: float
) -> tuple[float, float]:
    """(power after `dt_s`, mean power over it) moving at most `rate_kw_per_s` towards target."""
    gap = target_kw - start_kw
    if gap == 0 or dt_s <= 0:
        return start_kw, start_kw
    needed_s = abs(gap) / rate_kw_per_s if rate_kw_per_s > 0 else math.inf
    if needed_s >= dt_s:  # still on the way at the end of the step
        end = start_kw + math.copysign(rate_kw_per_s * dt_s, gap)
        return end, (start_kw + end) / 2.0
    reached = needed_s / dt_s  # share of the step spent ramping
    return target_kw, (start_kw + target_kw) / 2.0 * reached + target_kw * (1.0 - reached)


def heat_step(
    temperature_c: float,
    *,
    losses_kw: float,
    ambient_c: float,
    dt_s: float,
    thermal_mass_kj_per_k: float,
    fan_error: bool,
    powered: bool,
) -> tuple[float, float, float]:
    """(temperature after `dt_s`, cooling kW, heating kW): losses and the air heat the cells,
    the chiller (derated in hot air, weak with a failed fan) cools them, a heater keeps them
    above 10 °C while the unit is powered."""
    derate = 1.0 if ambient_c <= 35.0 else max(0.5, 1.0 - (ambient_c - 35.0) / 30.0)
    cooling_kw = COOLING_KW_PER_K * (temperature_c - COOLING_SETPOINT_C)
    cooling_kw = max(0.0, min(COOLING_MAX_KW * derate, cooling_kw))
    if fan_error:
        cooling_kw *= FAN_ERROR_COOLING
    heating_kw = 0.0
    if temperature_c < HEATER_SETPOINT_C and powered:
        heating_kw = min(HEATER_MAX_KW, COOLING_KW_PER_K * (HEATER_SETPOINT_C - temperature_c))
    net_kw = losses_kw + heating_kw - cooling_kw + PASSIVE_KW_PER_K * (ambient_c - temperature_c)
    return temperature_c + net_kw * dt_s / thermal_mass_kj_per_k, cooling_kw, heating_kw


def cell_flow(
    mean_kw: float,
    dt_s: float,
    *,
    soc_percent: float,
    usable_kwh: float,
    efficiency: float,
    limits: tuple[float, float],
) -> tuple[float, float, float]:
    """(SOC after `dt_s`, kWh at the AC terminals, kWh through the cells) at `mean_kw`.

    Charging puts `efficiency` of the AC energy into the cells; discharging takes 1 /
    `efficiency` of it out of them; the SOC limits cut the flow short.
    """
    hours = dt_s / 3600.0
    if mean_kw == 0 or hours <= 0 or usable_kwh <= 0:
        return soc_percent, 0.0, 0.0
    low, high = limits
    if mean_kw < 0:  # charging: the cells get less than the grid gives
        room_kwh = max((high - soc_percent) / 100.0 * usable_kwh, 0.0)
        cell_kwh = min(-mean_kw * efficiency * hours, room_kwh)
        grid_kwh = cell_kwh / efficiency
        soc_percent += cell_kwh / usable_kwh * 100.0
    else:  # discharging: the cells give more than the grid gets
        left_kwh = max((soc_percent - low) / 100.0 * usable_kwh, 0.0)
        cell_kwh = min(mean_kw / efficiency * hours, left_kwh)
        grid_kwh = cell_kwh * efficiency
        soc_percent -= cell_kwh / usable_kwh * 100.0
    return min(100.0, max(0.0, soc_percent)), grid_kwh, cell_kwh


def chiller_cop(ambient_c: float, scale: float = 1.0) -> float:
    """Heat removed per kW of chiller electricity: worse in hot air."""
    cop = CHILLER_COP_AT_25_C - CHILLER_COP_PER_K * (ambient_c - COOLING_SETPOINT_C)
    return max(CHILLER_COP_MIN, cop) * scale


def standby_aux_kw(
    traits: UnitTraits, *, ambient_c: float, cooling_kw: float, heating_kw: float
) -> float:
    """The auxiliaries' draw with the PCS off: base load (more when hot) + chiller + heater."""
    hot = 1.0 + HOT_FANS_PER_K * max(0.0, ambient_c - COOLING_SETPOINT_C)
    chiller = cooling_kw / chiller_cop(ambient_c, traits.chiller_cop_scale)
    return traits.aux_base_kw * hot + chiller + heating_kw


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
