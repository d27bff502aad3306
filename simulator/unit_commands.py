"""What each operator command does to a simulated unit, and why a unit refuses one.

Pure functions of the unit's state (simulator.agent decides when to call them).
"""

from __future__ import annotations

import json
import math
from typing import Any

from simulator.ev import HOME_CHARGER_KW, Ev
from simulator.megapack import OPERATING_MODES, Megapack


class Refusal(Exception):
    """The unit will not do it; the message is the reason reported to the operator."""


def parse_params(params_json: str) -> dict[str, Any]:
    """A command's params: a JSON object, or a refusal."""
    try:
        params = json.loads(params_json or "{}")
    except json.JSONDecodeError:
        raise Refusal("params are not valid JSON") from None
    if not isinstance(params, dict):
        raise Refusal("params must be a JSON object")
    return params


def _number(params: dict[str, Any], name: str) -> float:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refusal(f"bad params: {name} must be a finite number")
    return float(value)


def apply_to_megapack(unit: Megapack, kind: str, params: dict[str, Any]) -> bool:
    """Change the Megapack as the command says; True when the effect is already complete."""
    if kind == "reset_fault":
        reason = unit.reset_fault()
        if reason is not None:
            raise Refusal(reason)
        return False
    if kind == "set_soc_limits":
        low, high = _number(params, "min_percent"), _number(params, "max_percent")
        if not 0 <= low < high <= 100:
            raise Refusal("bad params: need 0 <= min_percent < max_percent <= 100")
        unit.min_soc_percent, unit.max_soc_percent = low, high
        return True
    if kind not in ("set_mode", "set_power"):
        raise Refusal(f"unknown command type {kind!r} for a megapack")
    if unit.state == "FAULT":
        raise Refusal(f"unit is in FAULT ({', '.join(unit.fault_codes)}); reset it first")
    if unit.crew_on_site:
        raise Refusal("a maintenance crew is working on the unit")
    if kind == "set_power":
        power = _number(params, "power_kw")
        if abs(power) > unit.rated_power_kw:
            raise Refusal(
                f"power_kw {power:g} is beyond this unit's rated power ±{unit.rated_power_kw:g} kW"
            )
        mode = "DISCHARGING" if power > 0 else "CHARGING" if power < 0 else "IDLE"
    else:
        mode = str(params.get("mode"))
        if mode not in OPERATING_MODES:
            raise Refusal(f"bad params: mode must be one of {', '.join(OPERATING_MODES)}")
        magnitude = max(abs(unit.setpoint_kw), unit.dispatch_fraction * unit.rated_power_kw)
        power = {"DISCHARGING": magnitude, "CHARGING": -magnitude}.get(mode, 0.0)
    if mode == "DISCHARGING" and unit.soc_percent <= unit.min_soc_percent:
        raise Refusal(f"SOC {unit.soc_percent:.1f} % is at the lower limit")
    if mode == "CHARGING" and unit.soc_percent >= unit.max_soc_percent:
        raise Refusal(f"SOC {unit.soc_percent:.1f} % is at the upper limit")
    unit.mode_override, unit.setpoint_kw = mode, power
    return False


def apply_to_ev(vehicle: Ev, kind: str, params: dict[str, Any], now_ms: int) -> bool:
    """Change the vehicle as the command says; True when the effect is already complete."""
    if kind == "set_charge_limit":
        limit = _number(params, "limit_percent")
        if not 50 <= limit <= 100:
            raise Refusal("bad params: limit_percent must be 50-100")
        vehicle.charge_limit_percent = limit
        return True
    if kind == "start_charging":
        if vehicle.charging_state == "CHARGING":
            return True
        if vehicle.charging_state == "FAULT":
            raise Refusal("charger in FAULT")
        if vehicle.soc_percent >= vehicle.charge_limit_percent:
            raise Refusal(f"battery at its charge limit ({vehicle.charge_limit_percent:g} %)")
        vehicle.start_charging(kw=HOME_CHARGER_KW)  # remote start at a destination charger
        return False
    if kind == "stop_charging":
        if vehicle.charging_state not in ("CHARGING", "COMPLETE", "FAULT"):
            raise Refusal("not charging")
        vehicle.stop_charging(now_ms)
        return False
    raise Refusal(f"unknown command type {kind!r} for an ev")
