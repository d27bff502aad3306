"""Megapack and EV physics of the simulator: energy, SOC limits, heat, faults, driving."""

from __future__ import annotations

import random

import pytest

from simulator.ev import CITIES, HOME_CHARGER_KW, Ev
from simulator.faults import OVER_TEMPERATURE_C
from simulator.fleet import Fleet
from simulator.megapack import (
    FAULT_CODES,
    MEGAPACK_2H,
    MEGAPACK_4H,
    Megapack,
    MegapackModel,
)

NOON_MS = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000 + 12 * 3_600_000


def unit(model: MegapackModel = MEGAPACK_2H, *, soc: float = 50.0, temp: float = 25.0) -> Megapack:
    return Megapack(
        unit_id="MP-0001",
        site_id="SITE-01",
        model=model,
        soc_percent=soc,
        soh_percent=100.0,
        temperature_c=temp,
    )


def hold(mp: Megapack, power_kw: float) -> None:
    mode = "DISCHARGING" if power_kw > 0 else "CHARGING" if power_kw < 0 else "IDLE"
    mp.mode_override, mp.setpoint_kw = mode, power_kw


def run(mp: Megapack, seconds: float, *, dt_s: float = 10.0, ambient_c: float = 25.0) -> None:
    t = 0.0
    while t < seconds:
        mp.step(dt_s=dt_s, now_ms=NOON_MS + int(t * 1000), hour=12.0, ambient_c=ambient_c)
        t += dt_s


@pytest.mark.parametrize("model", [MEGAPACK_2H, MEGAPACK_4H])
def test_charge_then_discharge_returns_round_trip_efficiency(model: MegapackModel) -> None:
    mp = unit(model, soc=50.0)
    hold(mp, -model.rated_power_kw)
    while mp.soc_percent < 80.0:
        run(mp, 10)
    hold(mp, model.rated_power_kw)
    start_soc = mp.soc_percent
    while mp.soc_percent > 50.0:
        run(mp, 10)
    # the same SOC swing each way (tiny SOH drift aside): out / in is the round-trip efficiency
    swing_in, swing_out = start_soc - 50.0, start_soc - mp.soc_percent
    ratio = (mp.energy_discharged_kwh / swing_out) / (mp.energy_charged_kwh / swing_in)
    assert ratio == pytest.approx(model.round_trip_efficiency, rel=2e-3)
    assert mp.energy_charged_kwh > 0.29 * model.capacity_kwh  # 30 % of the pack went in


def test_soc_stays_inside_the_limits_and_charging_stops_at_the_upper_one() -> None:
    mp = unit(soc=90.0)
    hold(mp, -MEGAPACK_2H.rated_power_kw)
    run(mp, 3600)
    assert mp.soc_percent == pytest.approx(mp.max_soc_percent, abs=1e-6)
    assert -10.0 < mp.power_kw < 0.0  # the PCS is off: only the auxiliaries draw
    assert mp.state == "STANDBY"
    mp.min_soc_percent = 20.0
    hold(mp, MEGAPACK_2H.rated_power_kw)
    run(mp, 4 * 3600)
    assert mp.soc_percent == pytest.approx(20.0, abs=1e-6)
    assert -10.0 < mp.power_kw < 0.0


def test_time_of_use_charges_at_midday_and_discharges_at_the_evening_peak() -> None:
    fleet = Fleet(
        megapack_count=40, ev_count=0, site_count=1, fleet_count=1, seed=3, fault_rate_per_h=0.0
    )
    fleet.sites[0].utc_offset_h = 0.0
    power: dict[int, float] = {}
    day_start = NOON_MS - 12 * 3_600_000
    for minute in range(0, 24 * 60, 5):
        emission = fleet.step(day_start + minute * 60_000, default_dt_s=300)
        power[minute // 60] = sum(r["power_kw"] for r in emission.sites["SITE-01"])
    assert power[12] < 0 < power[19]  # cheap midday charges, evening peak discharges
    socs = [u.soc_percent for u in fleet.megapacks.values()]
    assert len({round(s, 1) for s in socs}) > 30  # per-unit variation


def test_temperature_settles_with_cooling_and_trips_without_it() -> None:
    cooled = unit(temp=25.0)
    hold(cooled, MEGAPACK_2H.rated_power_kw)
    cooled.max_soc_percent, cooled.soc_percent = 100.0, 100.0
    cooled.min_soc_percent = 0.0
    run(cooled, 1800, dt_s=5, ambient_c=30.0)
    assert 26.0 < cooled.temperature_c < 35.0  # losses warm it, the chiller holds it

    hot = unit(temp=40.0)
    hot.fault_codes.append("FAN_ERROR")
    hot.thermal_mass_kj_per_k = 2_500.0  # a small unit, to heat within the test
    hold(hot, MEGAPACK_2H.rated_power_kw)
    hot.min_soc_percent, hot.soc_percent = 0.0, 100.0
    rng = random.Random(1)
    for second in range(0, 3600, 5):
        hot.step(dt_s=5, now_ms=NOON_MS + second * 1000, hour=12.0, ambient_c=30.0)
        hot.roll_faults(rng=rng, fault_rate_per_h=0.0, dt_s=5, now_ms=NOON_MS + second * 1000)
        if hot.faulted:
            break
    assert hot.temperature_c >= OVER_TEMPERATURE_C
    assert hot.state == "FAULT"
    assert "OVER_TEMPERATURE" in hot.fault_codes
    assert hot.power_kw == 0.0

    idle = unit(temp=40.0)
    hold(idle, 0.0)
    run(idle, 4 * 3600, ambient_c=20.0)
    assert idle.temperature_c < 27.0  # cools back down towards the set point


def test_a_fault_stays_until_maintenance_which_brings_the_unit_back() -> None:
    mp = unit()
    rng = random.Random(2)
    mp.fault("INVERTER_FAULT", rng=rng, now_ms=NOON_MS)
    assert mp.maintenance_at_ms is not None
    crew_ms = mp.maintenance_at_ms
    for t in range(NOON_MS, crew_ms, 60_000):
        mp.step(dt_s=60, now_ms=t, hour=12, ambient_c=20)
        assert mp.state == "FAULT"
        assert -10.0 < mp.power_kw < 0.0  # contactors open: the auxiliaries still draw
    seen = []
    for t in range(crew_ms, crew_ms + 2 * 3_600_000, 30_000):
        mp.step(dt_s=30, now_ms=t, hour=12, ambient_c=20)
        seen.append(mp.state)
    assert seen[0] == "MAINTENANCE"
    assert "OFFLINE" in seen
    assert seen[-1] not in ("FAULT", "MAINTENANCE", "OFFLINE")
    assert mp.fault_codes == []


def test_reset_clears_a_fault_only_when_the_unit_is_faulted_and_cool() -> None:
    mp = unit()
    assert mp.reset_fault() == "unit is IDLE, not in FAULT"
    mp.fault("GROUND_FAULT", rng=random.Random(1), now_ms=NOON_MS)
    mp.temperature_c = 50.0
    assert "above" in str(mp.reset_fault())
    mp.temperature_c = 30.0
    assert mp.reset_fault() is None
    assert mp.state == "IDLE"
    assert mp.fault_codes == []


def test_fault_rate_zero_never_faults_and_a_high_rate_does() -> None:
    quiet = Fleet(
        megapack_count=50, ev_count=20, site_count=2, fleet_count=1, seed=5, fault_rate_per_h=0.0
    )
    for step in range(200):
        emission = quiet.step(NOON_MS + step * 60_000, default_dt_s=60)
        assert emission.count == 70
        assert all(not r["fault_codes"] for r in emission.sites["SITE-01"])
    assert not any(u.faulted for u in quiet.megapacks.values())
    noisy = Fleet(
        megapack_count=50, ev_count=0, site_count=1, fleet_count=1, seed=5, fault_rate_per_h=2.0
    )
    codes: set[str] = set()
    silent = 0
    for step in range(60):
        emission = noisy.step(NOON_MS + step * 60_000, default_dt_s=60)
        silent = max(silent, 50 - emission.count)
        codes.update(c for r in emission.sites["SITE-01"] for c in r["fault_codes"])
    assert codes
    assert codes <= set(FAULT_CODES) | {"OVER_TEMPERATURE"}
    assert any(u.faulted for u in noisy.megapacks.values())
    assert silent > 0  # COMMUNICATION_LOSS: some units stopped reporting for a while


def test_lost_communication_stops_reports_then_they_come_back_with_the_code() -> None:
    fleet = Fleet(
        megapack_count=1, ev_count=0, site_count=1, fleet_count=1, seed=1, fault_rate_per_h=0.0
    )
    mp = fleet.megapacks["MP-0001"]
    mp.silent_until_ms, mp.comms_restored = NOON_MS + 30_000, True
    counts = [fleet.step(NOON_MS + s * 10_000, default_dt_s=10).count for s in range(5)]
    assert counts == [0, 0, 0, 1, 1]
    assert fleet.step(NOON_MS + 60_000).sites["SITE-01"][0]["fault_codes"] == []


def test_soh_drifts_down_slowly() -> None:
    mp = unit()
    hold(mp, -MEGAPACK_2H.rated_power_kw)
    run(mp, 3600, dt_s=60)
    assert 99.9 < mp.soh_percent < 100.0


def test_faulted_units_hook_starts_them_in_fault_until_reset() -> None:
    fleet = Fleet(
        megapack_count=3,
        ev_count=0,
        site_count=1,
        fleet_count=1,
        seed=1,
        fault_rate_per_h=0.0,
        faulted_units=("MP-0002",),
    )
    for step in range(100):
        readings = fleet.step(NOON_MS + step * 60_000, default_dt_s=60).sites["SITE-01"]
        assert readings[1]["state"] == "FAULT"
        assert readings[1]["fault_codes"] == ["INVERTER_FAULT"]
    assert readings[0]["state"] != "FAULT"


def test_vehicles_drive_inside_their_city_drain_and_go_to_charge() -> None:
    rng = random.Random(4)
    city = CITIES[0]
    ev = Ev(vehicle_id="EV-0001", fleet_id="FLEET-01", city=city, rng=rng)
    ev.soc_percent, ev.charge_limit_percent = 30.0, 80.0
    odometer, states, powers = ev.odometer_km, set(), []
    for second in range(0, 6 * 3600, 2):
        ev.step(dt_s=2, now_ms=NOON_MS + second * 1000, ambient_c=20.0, rng=rng, fault_p=0.0)
        assert city.south <= ev.latitude <= city.north
        assert city.west <= ev.longitude <= city.east
        assert 0.0 <= ev.speed_kmh <= 130.0
        states.add(ev.charging_state)
        if ev.charging_state == "CHARGING":
            powers.append(ev.charge_power_kw)
    assert ev.odometer_km > odometer + 20
    assert {"CHARGING", "COMPLETE"} <= states
    assert HOME_CHARGER_KW <= max(powers) <= 250.0


def test_a_leaking_tire_loses_pressure_and_the_others_do_not() -> None:
    rng = random.Random(9)
    evs = [Ev(vehicle_id=f"EV-{i}", fleet_id="F", city=CITIES[1], rng=rng) for i in range(60)]
    before = [ev.tire_pressure_psi for ev in evs]
    for ev in evs:
        ev.activity = "PARKED"
        ev.pause_until_ms = NOON_MS + 10 * 86_400_000
        ev.step(dt_s=86_400, now_ms=NOON_MS, ambient_c=20.0, rng=rng, fault_p=0.0)
    lost = [b - ev.tire_pressure_psi for b, ev in zip(before, evs, strict=True)]
    assert 0 < sum(x > 0.5 for x in lost) < 20  # some vehicles leak, most do not
    assert max(lost) < 5.0  # slowly: a few psi a day
