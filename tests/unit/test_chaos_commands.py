"""The chaos command checker bites: a superseded or expired command the unit ran is caught."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chaos.commands import judge
from proto.megapack.v1 import commands_pb2 as pb

EXPIRES = "2026-12-01T12:00:30+00:00"
EXPIRES_MS = int(datetime.fromisoformat(EXPIRES).timestamp() * 1000)
ACKED, DONE = pb.COMMAND_ACK_STATUS_ACKNOWLEDGED, pb.COMMAND_ACK_STATUS_COMPLETED
REFUSED = pb.COMMAND_ACK_STATUS_REJECTED


def ack(command_id: str, status: int, at_ms: int) -> pb.CommandAck:
    return pb.CommandAck(command_id=command_id, unit_id="MP-0001", status=status,  # type: ignore[arg-type]
                         at_ms=at_ms, agent_id="sim")  # fmt: skip


def view(status: str, type_: str = "set_mode", **extra: Any) -> dict[str, Any]:
    return {"status": status, "type": type_, "expires_at": EXPIRES, **extra}


def test_a_clean_run_passes_and_verified_commands_may_fail_on_telemetry() -> None:
    views = {
        "a": view("completed"),
        "b": view("failed"),
        "c": view("superseded", not_before=EXPIRES),
        "d": view("rejected", group_id="g"),
    }
    answers = {
        "a": [ack("a", ACKED, 1), ack("a", DONE, 2)],
        "b": [ack("b", ACKED, 1), ack("b", DONE, 2)],
    }  # fmt: skip
    verdict = judge(issued=4, views=views, answers=answers)
    assert verdict.ok, verdict
    assert verdict.executed == 2
    assert (verdict.in_groups, verdict.scheduled) == (1, 1)  # the mix the report shows


def test_a_superseded_or_late_command_that_ran_is_caught() -> None:
    views = {
        "s": view("superseded"),
        "x": view("expired"),
        "ok": view("completed", "set_soc_limits"),
    }
    answers = {
        "s": [ack("s", ACKED, 1)],
        "x": [ack("x", ACKED, EXPIRES_MS + 5)],
        "ok": [ack("ok", DONE, 1), ack("ok", ACKED, 1)],
    }  # fmt: skip
    verdict = judge(issued=3, views=views, answers=answers)
    assert not verdict.ok
    assert (verdict.executed_superseded, verdict.executed_after_expiry) == (1, 1)
    assert len(verdict.wrong_status) == 2  # both ended otherwise than the unit's answers allow


def test_a_refusal_stamped_after_the_expiry_agrees_with_expired_but_one_before_does_not() -> None:
    # make cluster-chaos: a publish unconfirmed during a node pause reached the unit after the
    # service had expired the command; the unit refused it as expired, after the expiry.
    views = {"late": view("expired"), "early": view("expired")}
    answers = {
        "late": [ack("late", REFUSED, EXPIRES_MS + 5)],
        "early": [ack("early", REFUSED, EXPIRES_MS - 5)],  # in time: `rejected` must win
    }
    verdict = judge(issued=2, views=views, answers=answers)
    assert [wrong.split()[0] for wrong in verdict.wrong_status] == ["early"]
    assert verdict.executed_after_expiry == 0
