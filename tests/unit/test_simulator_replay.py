"""SIM_START / SIM_SPEED: historical instants at N× real speed, then real time (fake clocks)."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from common.settings import load_settings
from simulator.clock import ManualClock, Pace
from simulator.fleet import Emission, Fleet
from simulator.runner import simulate
from simulator.settings import SimulatorSettings
from simulator.stats import Stats

WALL_MS = 1_796_000_000_000


class FakeMonotonic:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_replay_stamps_history_on_an_exact_grid_at_speed_then_real_time() -> None:
    wall, mono = ManualClock(WALL_MS), FakeMonotonic()
    start_ms = WALL_MS - 3_600_000  # an hour ago
    pace = Pace(interval_s=10.0, wall=wall, monotonic=mono, start_ms=start_ms, speed=100.0)
    stamps, waits = [], []
    while pace.replaying:
        waits.append(pace.wait_s())
        mono.now_s += waits[-1]  # the runner sleeps that long
        wall.advance(waits[-1])  # and real time passes meanwhile
        stamps.append(pace.take())
    replayed = stamps[:-1]  # the last take found the grid past now: the first real-time step
    assert replayed[:3] == [start_ms, start_ms + 10_000, start_ms + 20_000]
    assert all(b - a == 10_000 for a, b in itertools.pairwise(replayed))
    assert waits[1:4] == pytest.approx([0.1, 0.1, 0.1])  # 10 s of history per 0.1 s at ×100
    # an hour at ×100 takes 36 s, during which the wall moved on 36 s more (3.6 steps)
    assert len(replayed) == pytest.approx(364, abs=1)
    assert replayed[-1] <= stamps[-1] == wall.now_ms()
    assert stamps[-1] - replayed[-1] <= 10_000
    # real time: one step per interval, stamped with the wall clock
    for _ in range(3):
        wait = pace.wait_s()
        assert wait == pytest.approx(10.0)
        mono.now_s += wait
        wall.advance(wait)
        assert pace.take() == wall.now_ms()


def test_a_slow_replay_is_late_but_never_skips_history() -> None:
    wall, mono = ManualClock(WALL_MS), FakeMonotonic()
    start_ms = WALL_MS - 600_000
    pace = Pace(interval_s=1.0, wall=wall, monotonic=mono, start_ms=start_ms, speed=1000.0)
    stamps = []
    for _ in range(50):
        assert pace.wait_s() == 0.0  # behind schedule: go at once
        stamps.append(pace.take())
        mono.now_s += 0.01  # each step costs 10 ms, ten times its 1 ms budget
    assert stamps == [start_ms + i * 1000 for i in range(50)]
    assert pace.behind_s() == pytest.approx(0.45, abs=0.01)
    assert pace.late_steps == 0  # lateness in a replay is slowness, not skipping


def test_real_time_skips_ahead_when_more_than_an_interval_late() -> None:
    wall, mono = ManualClock(WALL_MS), FakeMonotonic()
    pace = Pace(interval_s=1.0, wall=wall, monotonic=mono)
    assert not pace.replaying
    assert pace.take() == WALL_MS
    mono.now_s += 5.0
    wall.advance(5.0)
    assert pace.wait_s() == 0.0
    assert pace.take() == WALL_MS + 5_000
    assert pace.late_steps == 1
    assert pace.wait_s() == pytest.approx(1.0)


class Collect:
    def __init__(self, wall: ManualClock, mono: FakeMonotonic) -> None:
        self.wall, self.mono = wall, mono
        self.emissions: list[Emission] = []
        self.waited: list[int] = []

    def submit(self, emission: Emission) -> None:
        self.emissions.append(emission)
        self.wall.advance(0.001)
        self.mono.now_s += 0.001

    @property
    def buffered(self) -> int:
        return 0

    async def wait_below(self, readings: int) -> None:
        self.waited.append(readings)


async def test_the_runner_replays_history_then_goes_on_in_real_time() -> None:
    wall, mono = ManualClock(WALL_MS), FakeMonotonic()
    start_ms = WALL_MS - 20_000  # 20 s ago, 1 s steps
    fleet = Fleet(megapack_count=2, ev_count=0, site_count=1, fleet_count=1, seed=1,
                  fault_rate_per_h=0.0)  # fmt: skip
    outlet = Collect(wall, mono)
    pace = Pace(interval_s=1.0, wall=wall, monotonic=mono, start_ms=start_ms, speed=1e6)
    steps = await simulate(
        fleet=fleet, outlet=outlet, stats=Stats(), clock=wall, stop=asyncio.Event(),
        interval_s=1.0, duration_s=22.0, pace=pace, backlog_readings=123,
    )  # fmt: skip
    stamps = [e.sites["SITE-01"][0]["timestamp"] for e in outlet.emissions]
    assert steps == 22
    assert stamps[:21] == [start_ms + i * 1000 for i in range(21)]  # history, on the grid
    assert stamps[21] == wall.now_ms() - 1  # caught up: the wall clock's instant
    assert not pace.replaying
    assert outlet.waited == [123] * 22  # the replay waited for the sender before each step


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SIM_START": "yesterday"}, "SIM_START must be RFC 3339"),
        ({"SIM_START": "2026-11-30T00:00:00"}, "SIM_START RFC 3339 timestamp needs an offset"),
        ({"SIM_START": "1796000000000"}, "SIM_START must be RFC 3339"),
        ({"SIM_START": "2999-01-01T00:00:00Z"}, "SIM_START is in the future"),
        ({"SIM_START": "2020-01-01T00:00:00Z"}, "SIM_START is older than the gateway's retention"),
        ({"SIM_SPEED": "50"}, "SIM_SPEED needs SIM_START"),
        ({"SIM_SPEED": "0.5", "SIM_START": "now"}, "SIM_SPEED Input should be greater than"),
        ({"SIM_RAMP_PERCENT_PER_S": "0"}, "SIM_RAMP_PERCENT_PER_S Input should be greater"),
        ({"SIM_AUX_KW": "-1"}, "SIM_AUX_KW Input should be greater than or equal to 0"),
    ],
)
def test_bad_replay_and_physics_settings_stop_with_one_line_naming_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str],
    problem: str,
) -> None:  # fmt: skip
    for name, value in env.items():
        if value == "now":
            value = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        load_settings(SimulatorSettings, "simulator")
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"simulator: invalid configuration: {problem}"), lines


def test_a_replay_within_the_retention_window_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 7 * 86_400))
    monkeypatch.setenv("SIM_START", start)
    monkeypatch.setenv("SIM_SPEED", "5000")
    monkeypatch.setenv("RETENTION_DAYS", "8")
    settings = load_settings(SimulatorSettings, "simulator")
    assert settings.sim_start is not None
    assert abs(settings.sim_start - (time.time() - 7 * 86_400) * 1000) < 2_000
    assert settings.sim_speed == 5000
    monkeypatch.setenv("RETENTION_DAYS", "7")  # now the start is past the window
    with pytest.raises(SystemExit):
        load_settings(SimulatorSettings, "simulator")
