"""The unit agent's decisions: what a unit does with an operator command, and when it is done.

No I/O here: `receive` turns a command into acks (and changes the unit), `progress` reports
completion or failure of commands in progress after each simulation step.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from proto.megapack.v1 import commands_pb2
from simulator.fleet import Fleet
from simulator.unit_commands import Refusal, apply_to_ev, apply_to_megapack, parse_params

Ack = commands_pb2.CommandAck
ACKNOWLEDGED = commands_pb2.COMMAND_ACK_STATUS_ACKNOWLEDGED
COMPLETED = commands_pb2.COMMAND_ACK_STATUS_COMPLETED
REJECTED = commands_pb2.COMMAND_ACK_STATUS_REJECTED
FAILED = commands_pb2.COMMAND_ACK_STATUS_FAILED
SUPERSEDED = commands_pb2.COMMAND_ACK_STATUS_SUPERSEDED
LAPSED = commands_pb2.COMMAND_ACK_STATUS_LAPSED
HELD_TYPES = ("set_power", "set_mode")
REMEMBERED_COMMANDS = 100_000
REPEAT_WITHIN_MS = 10 * 60_000  # after a restart, answers this recent are published again
log = structlog.get_logger("simulator.agent")


class Journal(Protocol):
    """Where answers are kept across restarts (simulator.journal.AnswerJournal)."""

    def load(self) -> OrderedDict[str, list[Ack]]: ...

    def append(self, acks: Iterable[Ack], *, answered: OrderedDict[str, list[Ack]]) -> None: ...


@dataclass(slots=True)
class Hold:
    """A setpoint the unit keeps until `until_ms` unless a newer command renews or replaces it."""

    command: commands_pb2.Command
    until_ms: int


@dataclass(slots=True)
class InProgress:
    """A command whose effect is not visible yet."""

    command: commands_pb2.Command
    params: dict[str, Any]
    deadline_ms: int


class UnitAgent:
    """Commands of the fleet's units: each executed at most once, never after it expired."""

    def __init__(
        self,
        *,
        fleet: Fleet,
        agent_id: str,
        completion_timeout_s: float = 30.0,
        journal: Journal | None = None,
    ) -> None:
        self._fleet, self._agent_id, self._journal = fleet, agent_id, journal
        self._timeout_ms = int(completion_timeout_s * 1000)
        self._answered: OrderedDict[str, list[Ack]] = journal.load() if journal else OrderedDict()
        self._in_progress: dict[str, InProgress] = {}
        self._holds: dict[str, Hold] = {}  # unit id -> the setpoint it keeps, and until when
        # (unit id, type) -> seq of the newest command carried out: an older one is superseded
        self._newest: dict[tuple[str, str], int] = {}

    def _ack(
        self, command: commands_pb2.Command | Ack, status: int, now_ms: int, reason: str = ""
    ) -> Ack:
        ack = Ack(
            command_id=command.command_id,
            unit_id=command.unit_id,
            status=status,  # type: ignore[arg-type]
            reason=reason,
            at_ms=now_ms,
            agent_id=self._agent_id,
        )
        return ack

    def _record(self, acks: list[Ack]) -> list[Ack]:
        """Remember answers (on disk too, before they are published) and hand them on."""
        for ack in acks:
            self._answered.setdefault(ack.command_id, []).append(ack)
        if self._journal is not None:
            self._journal.append(acks, answered=self._answered)
        return acks

    def receive(self, command: commands_pb2.Command, *, now_ms: int) -> list[Ack]:
        """Answer one delivery; a repeated delivery gets the earlier answers, not a second run."""
        earlier = self._answered.get(command.command_id)
        if earlier is not None:
            return list(earlier)
        while len(self._answered) >= REMEMBERED_COMMANDS:
            self._answered.popitem(last=False)
        return self._record(self._decide(command, now_ms))

    def _decide(self, command: commands_pb2.Command, now_ms: int) -> list[Ack]:
        if command.expires_at_ms and now_ms > command.expires_at_ms:
            return [self._ack(command, REJECTED, now_ms, "expired")]
        newest = self._newest.get((command.unit_id, command.type), 0)
        if command.seq and command.seq < newest:
            reason = f"superseded: a newer {command.type} (seq {newest}) was carried out first"
            return [self._ack(command, SUPERSEDED, now_ms, reason)]
        try:
            params = parse_params(command.params_json)
            done = self._execute(command, params, now_ms)
            self._hold(command, params, now_ms)
        except Refusal as refusal:
            return [self._ack(command, REJECTED, now_ms, str(refusal))]
        except Exception as error:  # a unit that cannot say why still answers
            log.exception("command_crashed", command_id=command.command_id)
            return [self._ack(command, FAILED, now_ms, f"internal error: {error!r}")]
        if command.seq:
            self._newest[(command.unit_id, command.type)] = command.seq
        acks = [self._ack(command, ACKNOWLEDGED, now_ms)]
        if done:
            acks.append(self._ack(command, COMPLETED, now_ms))
        else:
            deadline = now_ms + self._timeout_ms
            self._in_progress[command.command_id] = InProgress(command, params, deadline)
        return acks

    def _hold(self, command: commands_pb2.Command, params: dict[str, Any], now_ms: int) -> None:
        """A setpoint replaces the unit's hold: kept `hold_s` (0: until changed)."""
        if command.type not in HELD_TYPES:
            return
        hold_s = params.get("hold_s") or 0
        if isinstance(hold_s, int | float) and hold_s > 0:
            self._holds[command.unit_id] = Hold(command, now_ms + int(hold_s * 1000))
        else:
            self._holds.pop(command.unit_id, None)

    def _lapse(self, now_ms: int) -> list[Ack]:
        """Holds run out unrenewed: the unit goes back to STANDBY at 0 kW and says so."""
        acks: list[Ack] = []
        for unit_id, hold in list(self._holds.items()):
            if now_ms < hold.until_ms:
                continue
            del self._holds[unit_id]
            self._in_progress.pop(hold.command.command_id, None)
            unit = self._fleet.megapacks.get(unit_id)
            if unit is not None:
                unit.mode_override, unit.setpoint_kw = "STANDBY", 0.0
            log.info("setpoint_lapsed", unit_id=unit_id, command_id=hold.command.command_id)
            acks.append(self._ack(hold.command, LAPSED, now_ms, "hold ran out: STANDBY, 0 kW"))
        return acks

    def progress(self, *, now_ms: int) -> list[Ack]:
        """Completions (the effect shows) and failures (it did not in time) since the last step,
        and the holds that ran out."""
        acks: list[Ack] = self._lapse(now_ms)
        for command_id, pending in list(self._in_progress.items()):
            reached, why = self._reached(pending)
            if reached:
                acks.append(self._ack(pending.command, COMPLETED, now_ms))
            elif now_ms > pending.deadline_ms:
                reason = f"not reached within {self._timeout_ms // 1000} s: {why}"
                acks.append(self._ack(pending.command, FAILED, now_ms, reason))
            else:
                continue
            del self._in_progress[command_id]
        return self._record(acks)

    def recover(self, *, now_ms: int, within_ms: int = REPEAT_WITHIN_MS) -> list[Ack]:
        """Answers to publish after a restart: the final answers given lately again (their
        publish may never have been confirmed; the control service takes a repeat as a no-op),
        and a failure for each command left in progress (its effect died with the process)."""
        repeated: list[Ack] = []
        failed: list[Ack] = []
        for answers in self._answered.values():
            last = answers[-1]
            if now_ms - last.at_ms > within_ms:
                continue
            if last.status == ACKNOWLEDGED:
                reason = "the unit agent restarted before the effect showed"
                failed.append(self._ack(last, FAILED, now_ms, reason))
            else:
                repeated.append(last)
        return repeated + self._record(failed)

    def _execute(self, command: commands_pb2.Command, params: dict[str, Any], now_ms: int) -> bool:
        """Change the unit; True when the effect is already complete."""
        if command.kind == "megapack":
            unit = self._fleet.megapacks.get(command.unit_id)
            if unit is None:
                raise Refusal(f"unknown unit {command.unit_id}")
            return apply_to_megapack(unit, command.type, params)
        if command.kind == "ev":
            vehicle = self._fleet.evs.get(command.unit_id)
            if vehicle is None:
                raise Refusal(f"unknown vehicle {command.unit_id}")
            return apply_to_ev(vehicle, command.type, params, now_ms)
        raise Refusal(f"unknown unit kind {command.kind!r}")

    def _reached(self, pending: InProgress) -> tuple[bool, str]:
        command, params = pending.command, pending.params
        if command.kind == "ev":
            vehicle = self._fleet.evs[command.unit_id]
            wanted = command.type == "start_charging"
            return (vehicle.charging_state == "CHARGING") == wanted, vehicle.charging_state
        unit = self._fleet.megapacks[command.unit_id]
        if command.type == "set_power":
            tolerance = max(1.0, 0.01 * unit.rated_power_kw)
            reached = abs(unit.power_kw - params["power_kw"]) <= tolerance
            return reached and unit.state != "FAULT", f"power {unit.power_kw:.0f} kW, {unit.state}"
        if command.type == "set_mode":
            return unit.state == params["mode"], f"unit is {unit.state}"
        return unit.state != "FAULT", f"unit is {unit.state}"  # reset_fault
