"""The alarms a simulated Megapack raises at random and how often, and what follows: the
trip, the crew, the restart, a reset on request."""

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
OVER_TEMPERATURE_C = 55.0
RESET_BELOW_C = 45.0
OFFLINE_AFTER_MAINTENANCE_S = 60.0


def draw_alarm(rng: random.Random, *, rate_per_h: float, dt_s: float) -> str | None:
    """The alarm of the next `dt_s` seconds at `rate_per_h` per unit-hour, if any."""
    if rate_per_h <= 0 or rng.random() >= rate_per_h * dt_s / 3600.0:
        return None
    return rng.choices(FAULT_CODES, weights=FAULT_WEIGHTS)[0]


class FaultLifecycle:
    """A Megapack's faults, maintenance crews and restarts (mixed into simulator.megapack;
    the attributes are the Megapack's slots)."""

    state: str
    power_kw: float
    _reference_kw: float
    temperature_c: float
    fault_codes: list[str]
    maintenance_at_ms: int | None
    offline_until_ms: int
    silent_until_ms: int
    comms_restored: bool

    @property
    def crew_on_site(self) -> bool:
        """A maintenance crew is working on the unit (after a fault or a warning)."""
        return self.state == "MAINTENANCE" and self.maintenance_at_ms is not None

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
            self.power_kw = self._reference_kw = 0.0
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
        code = draw_alarm(rng, rate_per_h=fault_rate_per_h, dt_s=dt_s)
        if code is None:
            return
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
        self.power_kw = self._reference_kw = 0.0  # contactors open
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
