"""Readings (the gateway's JSON shape) as a protobuf `TelemetryBatch`."""

from __future__ import annotations

from proto.megapack.v1 import telemetry_pb2 as pb
from simulator.fleet import Reading

_UNIT_STATES = {name: pb.UnitState.Value(f"UNIT_STATE_{name}") for name in (
    "IDLE", "CHARGING", "DISCHARGING", "STANDBY", "FAULT", "MAINTENANCE", "OFFLINE"
)}  # fmt: skip
_CHARGING_STATES = {
    name: pb.ChargingState.Value(f"CHARGING_STATE_{name}")
    for name in ("NOT_CHARGING", "CHARGING", "COMPLETE", "FAULT")
}


def encode_protobuf(kind: str, readings: list[Reading]) -> bytes:
    """Serialize readings of one kind ("megapack" or "ev") as a TelemetryBatch."""
    batch = pb.TelemetryBatch()
    if kind == "megapack":
        add = batch.megapack.add
        for r in readings:
            add(
                unit_id=r["unit_id"], site_id=r["site_id"], timestamp_ms=r["timestamp"],
                soc_percent=r["soc_percent"], soh_percent=r["soh_percent"],
                power_kw=r["power_kw"], voltage_v=r["voltage_v"], current_a=r["current_a"],
                temperature_c=r["temperature_c"], state=_UNIT_STATES[r["state"]],
                fault_codes=r["fault_codes"], rated_power_kw=r.get("rated_power_kw"),
                capacity_kwh=r.get("capacity_kwh"),  # optional: absent = not sent
            )  # fmt: skip
    else:
        add_ev = batch.ev.add
        for r in readings:
            add_ev(
                vehicle_id=r["vehicle_id"], fleet_id=r["fleet_id"], timestamp_ms=r["timestamp"],
                battery_soc_percent=r["battery_soc_percent"],
                battery_temp_c=r["battery_temp_c"], latitude=r["latitude"],
                longitude=r["longitude"], speed_kmh=r["speed_kmh"],
                charging_state=_CHARGING_STATES[r["charging_state"]],
                charge_power_kw=r["charge_power_kw"],
                tire_pressure_psi=r["tire_pressure_psi"], odometer_km=r["odometer_km"],
            )  # fmt: skip
    return batch.SerializeToString()
