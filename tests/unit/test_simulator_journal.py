"""The unit agent's journal: a restart never runs a command twice, and owes no answer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulator.agent import ACKNOWLEDGED, COMPLETED, FAILED, UnitAgent
from simulator.journal import AnswerJournal
from tests.unit.test_simulator_agent import NOW_MS, command, setup, statuses


def journal(path: Path, remembered: int = 100) -> AnswerJournal:
    return AnswerJournal(path, remembered=remembered)


def test_a_restarted_agent_answers_a_redelivery_from_its_journal(tmp_path: Path) -> None:
    fleet, _ = setup()
    path = tmp_path / "agent.journal"
    agent = UnitAgent(fleet=fleet, agent_id="sim-test", journal=journal(path))
    limits = command("MP-0001", "set_soc_limits", {"min_percent": 10, "max_percent": 80})
    first = agent.receive(limits, now_ms=NOW_MS)
    assert statuses(first) == [ACKNOWLEDGED, COMPLETED]
    unit = fleet.megapacks["MP-0001"]
    unit.min_soc_percent, unit.max_soc_percent = 5.0, 95.0  # changed since; a re-run would undo it
    with path.open("ab") as file:
        file.write(b"0a2")  # a line torn by the crash
    restarted = UnitAgent(fleet=fleet, agent_id="sim-test", journal=journal(path))
    again = restarted.receive(limits, now_ms=NOW_MS + 5_000)
    assert again == first  # the same answers with the same timestamps
    assert (unit.min_soc_percent, unit.max_soc_percent) == (5.0, 95.0)


def test_the_journal_keeps_the_newest_commands_when_it_compacts(tmp_path: Path) -> None:
    fleet, _ = setup()
    path = tmp_path / "agent.journal"
    agent = UnitAgent(fleet=fleet, agent_id="sim-test", journal=journal(path, remembered=3))
    sent = [command("MP-0001", "set_soc_limits", {"min_percent": 5, "max_percent": 90})]
    sent += [command("EV-0001", "set_charge_limit", {"limit_percent": 80}) for _ in range(6)]
    for each in sent:
        agent.receive(each, now_ms=NOW_MS)
    assert len(path.read_bytes().splitlines()) <= 2 * 3 * 2  # rewritten, not grown forever
    kept = journal(path, remembered=3).load()
    assert list(kept) == [each.command_id for each in sent[-3:]]


def test_a_line_torn_anywhere_is_skipped_never_read_as_an_answer(tmp_path: Path) -> None:
    fleet, _ = setup()
    path = tmp_path / "agent.journal"
    agent = UnitAgent(fleet=fleet, agent_id="sim-test", journal=journal(path))
    agent.receive(command("EV-0001", "set_charge_limit", {"limit_percent": 80}), now_ms=NOW_MS)
    first, second = path.read_bytes().splitlines()
    for cut in range(1, len(second)):
        path.write_bytes(first + b"\n" + second[:cut] + b"\n")
        loaded = journal(path).load()
        assert [statuses(acks) for acks in loaded.values()] == [[ACKNOWLEDGED]], cut


def test_a_failed_write_leaves_no_half_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet, _ = setup()
    path = tmp_path / "agent.journal"
    agent = UnitAgent(fleet=fleet, agent_id="sim-test", journal=journal(path))
    kept = command("EV-0001", "set_charge_limit", {"limit_percent": 80})
    agent.receive(kept, now_ms=NOW_MS)
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        monkeypatch.setattr(os, "write", real_write)
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        agent.receive(command("EV-0001", "set_charge_limit", {"limit_percent": 70}), now_ms=NOW_MS)
    later = command("EV-0001", "set_charge_limit", {"limit_percent": 60})
    agent.receive(later, now_ms=NOW_MS)
    loaded = journal(path).load()
    assert list(loaded) == [kept.command_id, later.command_id]


def test_compaction_is_paid_for_by_as_many_appends(tmp_path: Path) -> None:
    fleet, _ = setup()
    path = tmp_path / "agent.journal"
    answers = journal(path, remembered=3)
    rewrites = 0
    rewrite = answers._rewrite

    def counted(answered: object) -> None:
        nonlocal rewrites
        rewrites += 1
        rewrite(answered)  # type: ignore[arg-type]

    answers._rewrite = counted  # type: ignore[method-assign]
    agent = UnitAgent(fleet=fleet, agent_id="sim-test", journal=answers)
    for _ in range(30):  # two answers each: acknowledged, completed
        agent.receive(command("EV-0001", "set_charge_limit", {"limit_percent": 80}), now_ms=NOW_MS)
    assert rewrites <= 1 + 30 // 3  # the load, then one per three commands at most
    assert len(journal(path, remembered=3).load()) == 3


def test_after_a_restart_the_agent_repeats_recent_answers_and_fails_what_was_in_progress(
    tmp_path: Path,
) -> None:
    fleet, _ = setup()
    path = tmp_path / "agent.journal"
    agent = UnitAgent(fleet=fleet, agent_id="sim-test", journal=journal(path))
    old = command("EV-0001", "set_charge_limit", {"limit_percent": 90})
    agent.receive(old, now_ms=NOW_MS - 3_600_000)  # an hour ago: long since heard
    done = command("EV-0002", "set_charge_limit", {"limit_percent": 80})
    agent.receive(done, now_ms=NOW_MS)
    moving = command("MP-0001", "set_mode", {"mode": "DISCHARGING"})
    assert statuses(agent.receive(moving, now_ms=NOW_MS)) == [ACKNOWLEDGED]  # in progress
    restarted = UnitAgent(fleet=fleet, agent_id="sim-test", journal=journal(path))
    owed = restarted.recover(now_ms=NOW_MS + 1_000)
    assert [(a.command_id, a.status) for a in owed] == [
        (done.command_id, COMPLETED),
        (moving.command_id, FAILED),
    ]
    assert "restarted" in owed[-1].reason
    again = UnitAgent(fleet=fleet, agent_id="sim-test", journal=journal(path))
    assert statuses(again.receive(moving, now_ms=NOW_MS + 2_000)) == [ACKNOWLEDGED, FAILED]
