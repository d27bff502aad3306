"""Commands under faults: a steady flow of operator commands, every unit answer observed.

An observer queue bound to `command_acks` sees every answer the unit agent publishes. The agent
answers a repeated delivery with its earlier answers (same `at_ms`), so a second *execution*
shows as a second ACKNOWLEDGED answer with another `at_ms`. The mix has single, scheduled
(`not_before`) and group commands; newer commands supersede older unsent ones, and a
superseded command must never be executed.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aio_pika.abc import AbstractIncomingMessage

from chaos.stack import Stack
from common.broker import connect_failover
from common.topology import declare_exchange, quorum_arguments
from proto.megapack.v1 import commands_pb2

FINAL = {"completed", "rejected", "failed", "expired", "superseded"}
ACKNOWLEDGED = commands_pb2.COMMAND_ACK_STATUS_ACKNOWLEDGED
REJECTED = commands_pb2.COMMAND_ACK_STATUS_REJECTED
ANSWER_STATUS = {
    commands_pb2.COMMAND_ACK_STATUS_COMPLETED: "completed",
    commands_pb2.COMMAND_ACK_STATUS_REJECTED: "rejected",
    commands_pb2.COMMAND_ACK_STATUS_FAILED: "failed",
    commands_pb2.COMMAND_ACK_STATUS_SUPERSEDED: "superseded",
}
VERIFIED = {"set_power", "set_mode"}  # completed by telemetry, not by the unit's word
MEGAPACKS = [f"MP-{i:04d}" for i in range(1, 5)]
EVS = [f"EV-{i:04d}" for i in range(1, 5)]


def _command(rng: random.Random) -> tuple[str, dict[str, Any]]:
    unit = rng.choice(MEGAPACKS + EVS)
    if unit.startswith("MP"):
        choice = rng.choice(
            [
                {"type": "set_mode", "params": {"mode": rng.choice(["IDLE", "STANDBY"])}},
                {"type": "set_soc_limits", "params": {"min_percent": 5, "max_percent": 95}},
            ]
        )
    else:
        choice = rng.choice(
            [
                {"type": "set_charge_limit", "params": {"limit_percent": rng.randint(50, 100)}},
                {"type": rng.choice(["start_charging", "stop_charging"]), "params": {}},
            ]
        )
    # Short lives, some shorter than an outage: expiry must happen, and be honoured.
    body = {**choice, "ttl_s": rng.choice([2, 5, 10])}
    if rng.random() < 0.25:  # scheduled a little ahead: released from the database
        body["not_before"] = (datetime.now(UTC) + timedelta(seconds=rng.uniform(1, 3))).isoformat()
    return unit, body


def _group(rng: random.Random) -> dict[str, Any]:
    units = rng.sample(MEGAPACKS, rng.randint(2, len(MEGAPACKS)))
    choice = rng.choice(
        [
            {"type": "set_mode", "params": {"mode": rng.choice(["IDLE", "STANDBY"])}},
            {"type": "set_soc_limits", "params": {"min_percent": 5, "max_percent": 95}},
        ]
    )
    return {**choice, "selector": {"unit_ids": units}, "ttl_s": rng.choice([5, 10])}


@dataclass
class CommandFlow:
    """Sends commands at `rate` per second; retries refusals with the same Idempotency-Key."""

    client: httpx.AsyncClient
    rate: float = 4.0
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)  # command_id -> view
    refusals: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    groups: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set: one group for every five single commands."""
        sent = 0
        while not stop.is_set():
            started = time.monotonic()
            if sent % 6 == 5:
                await self.send_group(_group(self.rng))
            else:
                unit, body = _command(self.rng)
                await self.send(unit, body)
            sent += 1
            await asyncio.sleep(max(0.0, 1 / self.rate - (time.monotonic() - started)))

    async def send_group(self, body: dict[str, Any], give_up_s: float = 30) -> None:
        """POST a group until a 202, then take each unit's command into `issued`."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        deadline = time.monotonic() + give_up_s
        while time.monotonic() < deadline:
            try:
                response = await self.client.post(
                    "/v1/command-groups", json=body, headers=headers, timeout=10
                )
                if response.status_code == 202:
                    group_id = response.json()["group_id"]
                    group = await self.client.get(f"/v1/command-groups/{group_id}", timeout=10)
                    if group.status_code == 200:
                        self.groups += 1
                        for member in group.json()["commands"]:
                            self.issued[member["command_id"]] = member
                        return
            except httpx.HTTPError as error:
                self.refusals[type(error).__name__] += 1
            else:
                self.refusals[f"group {response.status_code}"] += 1
                if response.status_code not in (202, 503):
                    return
            await asyncio.sleep(0.5)

    async def send(self, unit: str, body: dict[str, Any], give_up_s: float = 30) -> str | None:
        """POST until a 202 (returns the command id) or a final refusal."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        deadline = time.monotonic() + give_up_s
        while time.monotonic() < deadline:
            try:
                response = await self.client.post(
                    f"/v1/units/{unit}/commands", json=body, headers=headers, timeout=10
                )
            except httpx.HTTPError as error:
                self.refusals[type(error).__name__] += 1
            else:
                if response.status_code == 202:
                    view = response.json()
                    self.issued[view["command_id"]] = view
                    return str(view["command_id"])
                self.refusals[str(response.status_code)] += 1
                if response.status_code not in (503, 404):  # 404: unit not reported yet
                    return None
            await asyncio.sleep(0.5)
        return None

    async def final_views(self, timeout_s: float) -> dict[str, dict[str, Any]]:
        """Each issued command as the control service shows it, once all are final (or time out)."""
        deadline = time.monotonic() + timeout_s
        views: dict[str, dict[str, Any]] = {}
        while True:
            for command_id in self.issued:
                if views.get(command_id, {}).get("status") in FINAL:
                    continue
                try:
                    response = await self.client.get(f"/v1/commands/{command_id}", timeout=10)
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    views[command_id] = response.json()
            if all(v.get("status") in FINAL for v in views.values()) and len(views) == len(
                self.issued
            ):
                return views
            if time.monotonic() > deadline:
                return views
            await asyncio.sleep(0.5)


@dataclass
class AckObserver:
    """Every answer published on `command_acks`, read from a queue of the run's own."""

    stack: Stack
    answers: dict[str, list[commands_pb2.CommandAck]] = field(
        default_factory=lambda: defaultdict(list)
    )

    async def start(self) -> None:
        """Declare and bind the observer queue, then consume it in the background."""
        name = f"{self.stack.names.prefix}chaos.ack-observer"
        self.stack.extra_queues.append(name)
        self._connection = await connect_failover(self.stack.amqp_url, timeout_s=10)
        channel = await self._connection.channel()
        exchange = await declare_exchange(channel, self.stack.names.command_acks)
        queue = await channel.declare_queue(name, durable=True, arguments=quorum_arguments())
        await queue.bind(exchange, routing_key="#")
        await queue.consume(self._on_answer)

    async def _on_answer(self, message: AbstractIncomingMessage) -> None:
        ack = commands_pb2.CommandAck.FromString(message.body)
        self.answers[ack.command_id].append(ack)
        await message.ack()

    async def close(self) -> None:
        """Stop consuming."""
        await self._connection.close()


@dataclass(frozen=True, slots=True)
class CommandVerdict:
    """How the commands ended, against what the unit agent said."""

    issued: int
    final: int
    executed: int
    executed_twice: int
    executed_after_expiry: int
    executed_superseded: int
    wrong_status: list[str]
    statuses: Counter[str]
    unknown_answered: int  # answers about commands the flow never got an id for
    in_groups: int = 0  # of the issued: members of a group command
    scheduled: int = 0  # of the issued: with a `not_before`

    @property
    def ok(self) -> bool:
        return (
            self.issued > 0
            and self.final == self.issued
            and self.executed > 0
            and self.executed_twice == 0
            and self.executed_after_expiry == 0
            and self.executed_superseded == 0
            and not self.wrong_status
            and self.unknown_answered == 0
        )


def _expected(answers: list[commands_pb2.CommandAck], view: dict[str, Any]) -> set[str]:
    """The final statuses the unit's answers allow."""
    ends = {ANSWER_STATUS[a.status] for a in answers if a.status in ANSWER_STATUS}
    expires_ms = int(datetime.fromisoformat(view["expires_at"]).timestamp() * 1000)
    if any(a.status == REJECTED and a.at_ms > expires_ms for a in answers):
        # the unit refused it as expired, after its expiry: a delivery held up past it (a
        # publish unconfirmed in a failover) that the service may already have expired, and
        # an answer stamped after the expiry does not overturn that
        ends.add("expired")
    ran = any(a.status == ACKNOWLEDGED for a in answers)
    if view.get("type") in VERIFIED and (ran or "completed" in ends):
        # telemetry decides (EFFECT_TIMEOUT_S): the unit may say done while the effect never
        # showed, or a restarted agent fail what it had started while the effect did show
        ends |= {"completed", "failed"}
    if ends:
        return ends
    if ran:
        return {"failed"}  # acknowledged but never finished: the completion timeout fails it
    # Never answered: it expired, or a newer command superseded it before it went out, or
    # (in a group) the service refused it for that unit.
    return {"expired", "superseded", *(("rejected",) if view.get("group_id") else ())}


def judge(
    *,
    issued: int,
    views: dict[str, dict[str, Any]],
    answers: dict[str, list[commands_pb2.CommandAck]],
) -> CommandVerdict:
    """Compare every command's final status with the answers the agent published."""
    executed = twice = late = superseded = 0
    wrong: list[str] = []
    for command_id, view in views.items():
        said = answers.get(command_id, [])
        runs = {(a.agent_id, a.at_ms) for a in said if a.status == ACKNOWLEDGED}
        executed += bool(runs)
        twice += len(runs) > 1
        expires_ms = int(datetime.fromisoformat(view["expires_at"]).timestamp() * 1000)
        late += any(at_ms > expires_ms for _, at_ms in runs)
        superseded += view["status"] == "superseded" and bool(runs)
        if view["status"] not in (allowed := _expected(said, view)):
            wrong.append(f"{command_id} {view['status']} (unit said {sorted(allowed)})")
    final = sum(1 for v in views.values() if v.get("status") in FINAL)
    statuses = Counter(str(v.get("status")) for v in views.values())
    unknown = len(set(answers) - set(views))
    return CommandVerdict(
        issued, final, executed, twice, late, superseded, wrong, statuses, unknown,
        in_groups=sum(1 for v in views.values() if v.get("group_id")),
        scheduled=sum(1 for v in views.values() if v.get("not_before")),
    )  # fmt: skip
