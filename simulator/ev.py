"""One electric vehicle: driving around a city, draining, charging, warming, leaking, ageing."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

KM_PER_DEG_LAT = 111.32
LOW_SOC_PERCENT = 20.0
HOME_CHARGER_KW = 11.0
TEMP_TIME_CONSTANT_S = 900.0
EV_FAULT_SHARE = 0.2  # of FAULT_RATE: a vehicle trips less often than a container of inverters


@dataclass(frozen=True, slots=True)
class City:
    """A bounding box vehicles stay in, and its fast chargers (lat, lon, kW)."""

    name: str
    south: float
    north: float
    west: float
    east: float
    chargers: tuple[tuple[float, float, float], ...]


def _city(name: str, south: float, north: float, west: float, east: float) -> City:
    dy, dx = north - south, east - west
    chargers = tuple(
        (south + dy * fy, west + dx * fx, kw)
        for fy, fx, kw in (
            (0.2, 0.3, 250.0),
            (0.7, 0.2, 150.0),
            (0.5, 0.8, 250.0),
            (0.8, 0.6, 50.0),
        )
    )
    return City(name, south, north, west, east, chargers)


CITIES = (
    _city("san-francisco", 37.70, 37.81, -122.51, -122.37),
    _city("austin", 30.20, 30.35, -97.82, -97.65),
    _city("berlin", 52.45, 52.57, 13.28, 13.50),
    _city("shanghai", 31.15, 31.30, 121.40, 121.55),
)


class Ev:
    """State and physics of one vehicle; `step` advances it, `reading` reports it."""

    __slots__ = (
        "activity", "battery_kwh", "battery_temp_c", "charge_hold", "charge_limit_percent",
        "charge_power_kw", "charger_kw", "charging_state", "city", "cruise_kmh", "fleet_id",
        "latitude", "leak_psi_per_s", "longitude", "max_charge_kw", "odometer_km",
        "pause_until_ms", "soc_percent", "speed_kmh", "target", "tire_nominal_psi",
        "tire_pressure_psi", "vehicle_id",
    )  # fmt: skip

    def __init__(self, *, vehicle_id: str, fleet_id: str, city: City, rng: random.Random) -> None:
        self.vehicle_id, self.fleet_id, self.city = vehicle_id, fleet_id, city
        self.latitude = rng.uniform(city.south, city.north)
        self.longitude = rng.uniform(city.west, city.east)
        self.target = self._random_point(rng)
        self.battery_kwh = rng.choice((60.0, 75.0, 82.0, 100.0))
        self.max_charge_kw = rng.choice((170.0, 250.0))
        self.soc_percent = rng.uniform(25.0, 95.0)
        self.charge_limit_percent = rng.choice((80.0, 85.0, 90.0))
        self.battery_temp_c = rng.uniform(18.0, 28.0)
        self.tire_nominal_psi = rng.uniform(40.0, 44.0)
        self.tire_pressure_psi = self.tire_nominal_psi - rng.uniform(0.0, 2.0)
        leaks = rng.random() < 0.1  # a slow puncture: a few psi a day
        self.leak_psi_per_s = rng.uniform(1.0, 4.0) / 86_400 if leaks else 0.0
        self.odometer_km = rng.uniform(1_000.0, 80_000.0)
        self.speed_kmh = 0.0
        self.cruise_kmh = self._cruise(rng)
        self.activity = "DRIVING"  # DRIVING, TO_CHARGER, PARKED, CHARGING
        self.charging_state = "NOT_CHARGING"
        self.charge_power_kw = 0.0
        self.charger_kw = HOME_CHARGER_KW
        self.charge_hold = False  # an operator stopped charging: no automatic charge for now
        self.pause_until_ms = 0

    def _random_point(self, rng: random.Random) -> tuple[float, float]:
        city = self.city
        return rng.uniform(city.south, city.north), rng.uniform(city.west, city.east)

    @staticmethod
    def _cruise(rng: random.Random) -> float:
        return rng.uniform(80.0, 130.0) if rng.random() < 0.2 else rng.uniform(25.0, 60.0)

    def step(
        self, *, dt_s: float, now_ms: int, ambient_c: float, rng: random.Random, fault_p: float
    ) -> None:
        """Advance `dt_s` seconds."""
        load_kw = 0.0
        if self.activity in ("DRIVING", "TO_CHARGER"):
            load_kw = self._drive(dt_s, now_ms, rng)
        elif self.activity == "CHARGING":
            self._charge(dt_s, now_ms, rng, fault_p)
        elif now_ms >= self.pause_until_ms:
            self.activity, self.charging_state, self.charge_power_kw = "DRIVING", "NOT_CHARGING", 0
            self.cruise_kmh = self._cruise(rng)
        heat_kw = load_kw * 0.08 + self.charge_power_kw * 0.05
        target_c = ambient_c + 6.0 + heat_kw
        self.battery_temp_c += (target_c - self.battery_temp_c) * min(
            1.0, dt_s / TEMP_TIME_CONSTANT_S
        )
        self.tire_pressure_psi = max(15.0, self.tire_pressure_psi - self.leak_psi_per_s * dt_s)

    def _drive(self, dt_s: float, now_ms: int, rng: random.Random) -> float:
        if now_ms < self.pause_until_ms:  # a red light or a jam
            self.speed_kmh = max(0.0, self.speed_kmh - 15.0 * dt_s)
            return 0.5
        if rng.random() < 0.01 * dt_s:
            self.pause_until_ms = now_ms + rng.randint(10, 60) * 1000
        self.speed_kmh += (self.cruise_kmh - self.speed_kmh) * min(1.0, dt_s / 8.0)
        speed = max(0.0, min(130.0, self.speed_kmh))
        self.speed_kmh = speed
        distance_km = speed * dt_s / 3600.0
        km_per_deg_lon = KM_PER_DEG_LAT * math.cos(math.radians(self.latitude))
        dy_km = (self.target[0] - self.latitude) * KM_PER_DEG_LAT
        dx_km = (self.target[1] - self.longitude) * km_per_deg_lon
        left_km = math.hypot(dx_km, dy_km)
        if left_km <= distance_km:
            distance_km = left_km
            self.latitude, self.longitude = self.target
            self._arrive(now_ms, rng)
        elif left_km > 0:
            self.latitude += dy_km / left_km * distance_km / KM_PER_DEG_LAT
            self.longitude += dx_km / left_km * distance_km / km_per_deg_lon
        self.odometer_km += distance_km
        consumption_kwh = distance_km * (0.13 + 0.000012 * speed * speed) + 0.5 * dt_s / 3600.0
        self.soc_percent = max(0.0, self.soc_percent - consumption_kwh / self.battery_kwh * 100.0)
        threshold = LOW_SOC_PERCENT - (10.0 if self.charge_hold else 0.0)
        if self.activity == "DRIVING" and self.soc_percent < threshold:
            self._head_to_charger()
        return consumption_kwh * 3600.0 / dt_s if dt_s > 0 else 0.0

    def _head_to_charger(self) -> None:
        nearest = min(
            self.city.chargers,
            key=lambda c: (c[0] - self.latitude) ** 2 + (c[1] - self.longitude) ** 2,
        )
        self.target, self.charger_kw, self.activity = (
            (nearest[0], nearest[1]),
            nearest[2],
            "TO_CHARGER",
        )
        self.charge_hold = False

    def _arrive(self, now_ms: int, rng: random.Random) -> None:
        if self.activity == "TO_CHARGER":
            self.start_charging(kw=self.charger_kw)
            return
        self.target = self._random_point(rng)
        self.cruise_kmh = self._cruise(rng)
        if rng.random() < 0.1:  # an errand: park for a while
            self.activity, self.speed_kmh = "PARKED", 0.0
            self.pause_until_ms = now_ms + rng.randint(5, 30) * 60_000

    def start_charging(self, *, kw: float) -> None:
        """Plug in (where it stands when no charger is near) and start drawing power."""
        self.activity, self.charging_state, self.speed_kmh = "CHARGING", "CHARGING", 0.0
        self.charger_kw = kw
        self.charge_hold = False
        if self.tire_pressure_psi < self.tire_nominal_psi - 6.0:
            self.tire_pressure_psi = self.tire_nominal_psi  # topped up while charging

    def stop_charging(self, now_ms: int) -> None:
        """Unplug; the vehicle stays parked a little, then drives on."""
        self.activity, self.charging_state, self.charge_power_kw = "PARKED", "NOT_CHARGING", 0.0
        self.charge_hold = True
        self.pause_until_ms = now_ms + 120_000

    def _charge(self, dt_s: float, now_ms: int, rng: random.Random, fault_p: float) -> None:
        if self.charging_state == "FAULT":
            self.charge_power_kw = 0.0
            if now_ms >= self.pause_until_ms:  # the charger reset itself
                self.charging_state = "CHARGING"
            return
        if rng.random() < fault_p:
            self.charging_state, self.charge_power_kw = "FAULT", 0.0
            self.pause_until_ms = now_ms + rng.randint(2, 10) * 60_000
            return
        soc = self.soc_percent
        if soc >= self.charge_limit_percent:
            self.charging_state, self.charge_power_kw, self.activity = "COMPLETE", 0.0, "PARKED"
            self.pause_until_ms = now_ms + rng.randint(2, 10) * 60_000
            return
        power = min(self.charger_kw, self.max_charge_kw)
        if power > HOME_CHARGER_KW:  # DC fast charging tapers as the pack fills
            taper = 1.0 if soc < 50 else max(0.1, 1.0 - (soc - 50.0) / 55.0)
            power *= taper
        self.charge_power_kw = power
        self.soc_percent = min(100.0, soc + power * 0.95 * dt_s / 3600.0 / self.battery_kwh * 100)

    def reading(self, timestamp_ms: int) -> dict[str, Any]:
        """The telemetry reading, in the gateway's JSON shape."""
        return {
            "vehicle_id": self.vehicle_id,
            "fleet_id": self.fleet_id,
            "timestamp": timestamp_ms,
            "battery_soc_percent": round(self.soc_percent, 3),
            "battery_temp_c": round(self.battery_temp_c, 2),
            "latitude": round(self.latitude, 6),
            "longitude": round(self.longitude, 6),
            "speed_kmh": round(self.speed_kmh, 1),
            "charging_state": self.charging_state,
            "charge_power_kw": round(self.charge_power_kw, 2),
            "tire_pressure_psi": round(self.tire_pressure_psi, 2),
            "odometer_km": round(self.odometer_km, 3),
        }
