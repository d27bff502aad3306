"""The alarms a simulated Megapack raises at random, and how often."""

from __future__ import annotations

import random

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


def draw_alarm(rng: random.Random, *, rate_per_h: float, dt_s: float) -> str | None:
    """The alarm of the next `dt_s` seconds at `rate_per_h` per unit-hour, if any."""
    if rate_per_h <= 0 or rng.random() >= rate_per_h * dt_s / 3600.0:
        return None
    return rng.choices(FAULT_CODES, weights=FAULT_WEIGHTS)[0]
