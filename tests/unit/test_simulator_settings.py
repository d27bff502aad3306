"""The simulator's settings: every SPEC §3 variable is also a flag; bad values are one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from common.settings import load_settings
from simulator.__main__ import parse_args, start_agent
from simulator.clock import WallClock
from simulator.fleet import Fleet
from simulator.settings import SimulatorSettings

SPEC_VARIABLES = (
    "MEGAPACK_COUNT", "EV_COUNT", "SITE_COUNT", "TELEMETRY_INTERVAL_S", "SIM_DURATION_S",
    "SIM_SEED", "FAULT_RATE", "GATEWAY_URL", "DEVICE_API_KEY",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SPEC_VARIABLES, "SIM_AGENT", "SIM_FAULTED_UNITS", "TELEMETRY_FORMAT"):
        monkeypatch.delenv(name, raising=False)


def test_help_lists_every_spec_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    for variable in SPEC_VARIABLES:
        assert f"--{variable.lower().replace('_', '-')}" in shown
        assert variable in shown


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGAPACK_COUNT", "3")
    overrides = parse_args(
        ["--megapack-count", "200", "--ev-count", "100", "--sim-seed", "7", "--fault-rate", "0",
         "--format", "protobuf", "--no-agent", "--sim-faulted-units", "MP-0001,MP-0003"]
    )  # fmt: skip
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(SimulatorSettings, "simulator")
    assert (settings.megapack_count, settings.ev_count, settings.sim_seed) == (200, 100, 7)
    assert settings.fault_rate == 0
    assert settings.telemetry_format == "protobuf"
    assert settings.sim_agent is False
    assert settings.sim_faulted_units == ("MP-0001", "MP-0003")


def test_defaults_follow_the_spec() -> None:
    settings = load_settings(SimulatorSettings, "simulator")
    assert (settings.megapack_count, settings.ev_count, settings.site_count) == (10, 10, 2)
    assert settings.telemetry_interval_s == 1.0
    assert settings.sim_duration_s == 0
    assert settings.sim_seed is None
    assert settings.fault_rate == 0.5
    assert settings.gateway_url == "http://localhost:8000"
    assert settings.device_api_key is None
    assert settings.sim_agent_id == "sim"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TELEMETRY_INTERVAL_S", "0"), ("FAULT_RATE", "-1"), ("GATEWAY_URL", "localhost:8000")],
)
def test_a_bad_value_stops_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exit_:
        load_settings(SimulatorSettings, "simulator")
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"simulator: invalid configuration: {variable} ")
    assert "\n" not in error


def test_an_unusable_agent_journal_stops_the_simulator_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = SimulatorSettings(sim_agent_journal=str(blocker / "agent.journal"))
    fleet = Fleet(
        megapack_count=1, ev_count=0, site_count=1, fleet_count=1, seed=1, fault_rate_per_h=0
    )
    with pytest.raises(SystemExit) as stop:
        asyncio.run(start_agent(settings, fleet=fleet, clock=WallClock()))
    assert str(stop.value).startswith(f"simulator: SIM_AGENT_JOURNAL={blocker}/agent.journal: ")
    assert "\n" not in str(stop.value)
