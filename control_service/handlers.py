"""The control logic: create a command, deliver it, apply the unit's answers, sweep the late."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog

from control_service import metrics
from control_service.model import FINAL_STATUSES, CommandRecord, NewCommand, UnitRecord
from control_service.rules import Refused, check_params, check_unit, command_type, request_digest

log = structlog.get_logger("control_service")


class CommandStore(Protocol):
    """Where commands live (db.commands.CommandRepository)."""

    async def find_unit(self, unit_id: str) -> UnitRecord | None: ...
    async def insert_command(self, new: NewCommand) -> CommandRecord | None: ...
    async def find_by_idempotency_key(
        self, requested_by: str, key: str
    ) -> CommandRecord | None: ...
    async def get_command(self, command_id: uuid.UUID) -> CommandRecord | None: ...
    async def mark_sent(self, command_id: uuid.UUID, unit_id: str) -> CommandRecord | None: ...
    async def note_delivery_error(self, command_id: uuid.UUID, error: str) -> None: ...
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
    async def claim_pending(self, *, idle_s: float, limit: int = 100) -> list[CommandRecord]: ...


class DeliveryFailed(Exception):
    """The broker did not confirm a command (down, or no agent queue bound for the unit)."""


class CommandPublisher(Protocol):
    """Puts a command on the `commands` exchange (control_service.delivery.BrokerPublisher)."""

    @property
    def ready(self) -> bool: ...
    async def publish(self, command: CommandRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """An operator's request, as the HTTP layer parsed it."""

    unit_id: str
    type_name: str
    params: dict[str, Any]
    ttl_s: int
    requested_by: str
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A unit's answer about a command (decoded from a CommandAck)."""

    command_id: uuid.UUID
    unit_id: str
    status: str  # acknowledged | completed | rejected | failed
    reason: str | None
    agent_id: str | None
    unit_at: datetime | None


async def submit_command(
    *,
    store: CommandStore,
    publisher: CommandPublisher,
    request: CommandRequest,
    default_rated_power_kw: float,
) -> tuple[CommandRecord, bool]:
    """Check, store and deliver a command: (the command, whether this call created it)."""
    digest = request_digest(
        unit_id=request.unit_id,
        type_name=request.type_name,
        params=request.params,
        ttl_s=request.ttl_s,
    )
    # A retry is answered before any check: the unit may have changed since the first try.
    if request.idempotency_key is not None:
        existing = await store.find_by_idempotency_key(
            request.requested_by, request.idempotency_key
        )
        if existing is not None:
            return _replayed(existing, digest), False
    unit = await store.find_unit(request.unit_id)
    if unit is None:
        raise Refused(404, f"unknown unit {request.unit_id!r}")
    command = command_type(request.type_name)
    params = check_params(command, request.params)
    check_unit(command, params, unit, default_rated_power_kw=default_rated_power_kw)
    if not publisher.ready:
        raise Refused(503, "message broker unavailable; no command was created")
    stored = await store.insert_command(
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
        )
    )
    if stored is None:  # a concurrent request with the same key was stored first
        assert request.idempotency_key is not None
        existing = await store.find_by_idempotency_key(
            request.requested_by, request.idempotency_key
        )
        assert existing is not None
        return _replayed(existing, digest), False
    metrics.TRANSITIONS.labels("pending").inc()
    log.info(
        "command_created",
        command_id=str(stored.command_id),
        unit_id=stored.unit_id,
        type=stored.type,
        requested_by=stored.requested_by,
    )
    return await deliver(store=store, publisher=publisher, command=stored), True


def _replayed(existing: CommandRecord, digest: str) -> CommandRecord:
    if existing.request_digest != digest:  # the key is taken: a conflict with stored state
        raise Refused(
            409,
            f"Idempotency-Key {existing.idempotency_key!r} was already used for a different "
            f"request (command {existing.command_id}); use a new key for a new command",
        )
    return existing


async def deliver(
    *, store: CommandStore, publisher: CommandPublisher, command: CommandRecord
) -> CommandRecord:
    """Publish a pending command and mark it `sent` once confirmed; returns its latest state."""
    try:
        await publisher.publish(command)
    except DeliveryFailed as error:
        metrics.PUBLISHES.labels("failed").inc()
        log.warning(
            "command_not_delivered",
            command_id=str(command.command_id),
            unit_id=command.unit_id,
            error=str(error),
        )
        await store.note_delivery_error(command.command_id, str(error))
        return await store.get_command(command.command_id) or command
    metrics.PUBLISHES.labels("confirmed").inc()
    sent = await store.mark_sent(command.command_id, command.unit_id)
    if sent is not None:
        metrics.TRANSITIONS.labels("sent").inc()
        return sent
    return await store.get_command(command.command_id) or command  # the unit answered first


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
    _count(command)
    log.info("command_answered", **fields, status=command.status, reason=command.reason)
    return True


async def sweep(
    *, store: CommandStore, grace_s: float, completion_timeout_s: float
) -> list[CommandRecord]:
    """Expire commands nobody acknowledged in time; fail acknowledged ones that never finished."""
    ended = await store.expire_overdue(grace_s=grace_s)
    ended += await store.fail_unfinished(timeout_s=completion_timeout_s)
    for command in ended:
        _count(command)
        log.info(
            "command_closed",
            command_id=str(command.command_id),
            unit_id=command.unit_id,
            status=command.status,
            reason=command.reason,
        )
    return ended


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
        await deliver(store=store, publisher=publisher, command=command)
    return len(claimed)


def _count(command: CommandRecord) -> None:
    metrics.TRANSITIONS.labels(command.status).inc()
    if command.status in FINAL_STATUSES:
        ended_at = getattr(command, f"{command.status}_at")
        if ended_at is not None:
            seconds = (ended_at - command.created_at).total_seconds()
            metrics.TIME_TO_FINAL.labels(command.status).observe(max(seconds, 0.0))
