"""The control logic: create a command, deliver it, apply the unit's answers, sweep the late."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import structlog

from control_service import metrics
from control_service.delivering import (
    PUBLISHES_IN_FLIGHT,
    CommandPublisher,
    DeliveryStore,
    deliver_many,
)
from control_service.model import FINAL_STATUSES, CommandRecord, NewCommand, UnitRecord
from control_service.rules import (
    Refused,
    check_not_before,
    check_params,
    check_unit,
    command_type,
    request_digest,
)

log = structlog.get_logger("control_service")
T = TypeVar("T")


class CommandStore(DeliveryStore, Protocol):
    """Where commands live (db.commands.CommandRepository)."""

    async def find_unit(self, unit_id: str) -> UnitRecord | None: ...
    async def insert_command(
        self, new: NewCommand
    ) -> tuple[CommandRecord | None, list[CommandRecord]]: ...
    async def find_by_idempotency_key(
        self, requested_by: str, key: str
    ) -> CommandRecord | None: ...
    async def apply_answer(
        self,
        *,
        command_id: uuid.UUID,
        unit_id: str,
        status: str,
        reason: str | None,
        agent_id: str | None,
        unit_at: datetime | None,
    ) -> tuple[bool, CommandRecord | None]: ...
    async def expire_overdue(self, *, grace_s: float) -> list[CommandRecord]: ...
    async def fail_unfinished(self, *, timeout_s: float) -> list[CommandRecord]: ...
    async def verify_effects(
        self, *, default_rated_power_kw: float, timeout_s: float
    ) -> list[CommandRecord]: ...
    async def release_due(self, *, limit: int = 1000) -> list[CommandRecord]: ...
    async def claim_pending(self, *, idle_s: float, limit: int = 100) -> list[CommandRecord]: ...


@dataclass(frozen=True, slots=True)
class Defaults:
    """What the service fills in or bounds with: rated power, hold."""

    rated_power_kw: float
    hold_s: int = 0


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """An operator's request, as the HTTP layer parsed it."""

    unit_id: str
    type_name: str
    params: dict[str, Any]
    ttl_s: int
    requested_by: str
    idempotency_key: str | None = None
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A unit's answer about a command (decoded from a CommandAck)."""

    command_id: uuid.UUID
    unit_id: str
    status: str  # acknowledged | completed | rejected | failed | superseded | lapsed
    reason: str | None
    agent_id: str | None
    unit_at: datetime | None


async def submit_command(
    *,
    store: CommandStore,
    publisher: CommandPublisher,
    request: CommandRequest,
    defaults: Defaults,
) -> tuple[CommandRecord, bool]:
    """Check, store and deliver a command: (the command, whether this call created it)."""
    digest = request_digest(
        unit_id=request.unit_id,
        type_name=request.type_name,
        params=request.params,
        ttl_s=request.ttl_s,
        not_before=request.not_before,
    )
    # A retry is answered before any check: the unit may have changed since the first try.
    if request.idempotency_key is not None:
        existing = await store.find_by_idempotency_key(
            request.requested_by, request.idempotency_key
        )
        if existing is not None:
            return replayed(existing.request_digest, digest, existing), False
    unit = await store.find_unit(request.unit_id)
    if unit is None:
        raise Refused(404, f"unknown unit {request.unit_id!r}")
    command = command_type(request.type_name)
    params = check_params(command, request.params, default_hold_s=defaults.hold_s)
    not_before = check_not_before(request.not_before, now=datetime.now(UTC))
    check_unit(command, params, unit, default_rated_power_kw=defaults.rated_power_kw)
    if not publisher.ready:
        raise Refused(503, "message broker unavailable; no command was created")
    stored, superseded = await store.insert_command(
        NewCommand(
            command_id=uuid.uuid4(),
            unit_id=unit.unit_id,
            kind=unit.kind,
            type=command.name,
            params=params,
            ttl_s=request.ttl_s,
            requested_by=request.requested_by,
            idempotency_key=request.idempotency_key,
            request_digest=digest,
            not_before=not_before,
            status="scheduled" if not_before is not None else "pending",
        )
    )
    if stored is None:  # a concurrent request with the same key was stored first
        assert request.idempotency_key is not None
        existing = await store.find_by_idempotency_key(
            request.requested_by, request.idempotency_key
        )
        assert existing is not None
        return replayed(existing.request_digest, digest, existing), False
    closed(superseded)
    metrics.TRANSITIONS.labels(stored.status).inc()
    log.info(
        "command_created",
        command_id=str(stored.command_id),
        unit_id=stored.unit_id,
        type=stored.type,
        status=stored.status,
        requested_by=stored.requested_by,
    )
    if stored.status != "pending":
        return stored, True
    delivered = await deliver_many(store=store, publisher=publisher, commands=[stored])
    if delivered:
        return delivered[0], True
    return await store.get_command(stored.command_id) or stored, True  # superseded at once


def replayed(stored_digest: str, digest: str, existing: T) -> T:
    """The earlier result of a retry; 409 when the key was used for a different request."""
    if stored_digest != digest:  # the key is taken: a conflict with stored state
        raise Refused(
            409,
            "this Idempotency-Key was already used for a different request; "
            "use a new key for a new command",
        )
    return existing


async def apply_answer(*, store: CommandStore, answer: Answer) -> bool:
    """Apply a unit's answer; False when it was ignored (unknown, late or duplicate)."""
    moved, command = await store.apply_answer(
        command_id=answer.command_id,
        unit_id=answer.unit_id,
        status=answer.status,
        reason=answer.reason,
        agent_id=answer.agent_id,
        unit_at=answer.unit_at,
    )
    metrics.ANSWERS.labels(answer.status, str(moved).lower()).inc()
    fields = {"command_id": str(answer.command_id), "unit_id": answer.unit_id}
    if command is None:
        log.warning("answer_for_unknown_command", **fields, status=answer.status)
        return False
    if not moved:
        log.info("answer_ignored", **fields, answered=answer.status, status=command.status)
        return False
    if answer.status == "lapsed":
        log.info("command_hold_lapsed", **fields, status=command.status)
        return True
    _count(command)
    log.info("command_answered", **fields, status=command.status, reason=command.reason)
    return True


async def sweep(
    *,
    store: CommandStore,
    grace_s: float,
    completion_timeout_s: float,
    effect_timeout_s: float,
    default_rated_power_kw: float,
) -> list[CommandRecord]:
    """Expire commands nobody acknowledged in time; complete or fail those whose effect
    telemetry shows, or not; fail acknowledged ones that never finished."""
    ended = await store.expire_overdue(grace_s=grace_s)
    ended += await store.verify_effects(
        default_rated_power_kw=default_rated_power_kw, timeout_s=effect_timeout_s
    )
    ended += await store.fail_unfinished(timeout_s=completion_timeout_s)
    closed(ended)
    return ended


async def release_scheduled(*, store: CommandStore, publisher: CommandPublisher) -> int:
    """Publish the scheduled commands whose `not_before` has come (the schedule is stored)."""
    released = 0
    while publisher.ready:
        due = await store.release_due(limit=PUBLISHES_IN_FLIGHT)
        if due:
            metrics.TRANSITIONS.labels("pending").inc(len(due))
            log.info("commands_released", count=len(due))
            await deliver_many(store=store, publisher=publisher, commands=due, claimed=True)
        released += len(due)
        if len(due) < PUBLISHES_IN_FLIGHT:
            break
    return released


async def republish_pending(
    *, store: CommandStore, publisher: CommandPublisher, idle_s: float
) -> int:
    """Publish again the pending commands left unconfirmed (a crash, a broker outage)."""
    if not publisher.ready:
        return 0
    claimed = await store.claim_pending(idle_s=idle_s)
    for command in claimed:
        log.info(
            "command_republished",
            command_id=str(command.command_id),
            attempt=command.publish_attempts,
        )
    if claimed:
        await deliver_many(store=store, publisher=publisher, commands=claimed, claimed=True)
    return len(claimed)


def closed(commands: list[CommandRecord]) -> None:
    """Count and log commands the service itself moved to a final status."""
    for command in commands:
        _count(command)
        log.info(
            "command_closed",
            command_id=str(command.command_id),
            unit_id=command.unit_id,
            status=command.status,
            reason=command.reason,
        )


def _count(command: CommandRecord) -> None:
    metrics.TRANSITIONS.labels(command.status).inc()
    if command.status in FINAL_STATUSES:
        ended_at = getattr(command, f"{command.status}_at")
        if ended_at is not None:
            seconds = (ended_at - command.created_at).total_seconds()
            metrics.TIME_TO_FINAL.labels(command.status).observe(max(seconds, 0.0))
