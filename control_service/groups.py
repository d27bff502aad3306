"""Group commands: one command per unit a selector names, rejected per unit where it cannot go."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from control_service import metrics
from control_service.delivering import CommandPublisher, DeliveryStore, deliver_many
from control_service.handlers import Defaults, closed, replayed
from control_service.model import CommandRecord, NewCommand, NewGroup, UnitRecord
from control_service.rules import (
    CommandType,
    Refused,
    check_not_before,
    check_params,
    check_unit,
    command_type,
    request_digest,
)

log = structlog.get_logger("control_service")


class GroupStore(DeliveryStore, Protocol):
    """Where groups live (db.commands.CommandRepository)."""

    async def units_for(self, selector: dict[str, Any]) -> list[UnitRecord]: ...
    async def insert_group(
        self, group: NewGroup, news: list[NewCommand]
    ) -> tuple[list[CommandRecord], list[CommandRecord]] | None: ...
    async def find_group_by_idempotency_key(
        self, requested_by: str, key: str
    ) -> NewGroup | None: ...


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """An operator's group request, as the HTTP layer parsed it."""

    selector: dict[str, Any]
    type_name: str
    params: dict[str, Any]
    ttl_s: int
    requested_by: str
    idempotency_key: str | None = None
    not_before: datetime | None = None


def _digest(request: GroupRequest) -> str:
    selected = ",".join(f"{k}={v}" for k, v in sorted(request.selector.items()))
    return request_digest(
        unit_id=selected,
        type_name=request.type_name,
        params=request.params,
        ttl_s=request.ttl_s,
        not_before=request.not_before,
    )


async def submit_group(
    *,
    store: GroupStore,
    publisher: CommandPublisher,
    request: GroupRequest,
    defaults: Defaults,
) -> tuple[NewGroup, bool, list[CommandRecord]]:
    """Check and store a group (one statement): (the group, whether this call made it, its
    pending commands, for `deliver_group` to publish after the answer)."""
    digest = _digest(request)
    if request.idempotency_key is not None:
        existing = await store.find_group_by_idempotency_key(
            request.requested_by, request.idempotency_key
        )
        if existing is not None:
            return replayed(existing.request_digest, digest, existing), False, []
    command = command_type(request.type_name)
    params = check_params(command, request.params, default_hold_s=defaults.hold_s)
    not_before = check_not_before(request.not_before, now=datetime.now(UTC))
    units = await store.units_for(request.selector)
    if not units and "unit_ids" not in request.selector:
        ((name, value),) = request.selector.items()
        raise Refused(404, f"no units with {name} {value!r}")
    if not publisher.ready:
        raise Refused(503, "message broker unavailable; no command was created")
    group_id = uuid.uuid4()
    news = [
        *(_command(request, command, params, unit, not_before, group_id, defaults, digest)
          for unit in units),
        *(_unknown(request, command.kind, command.name, params, unit_id, group_id, digest)
          for unit_id in _missing(request.selector, units)),
    ]  # fmt: skip
    group = NewGroup(
        group_id=group_id,
        selector=request.selector,
        type=command.name,
        params=params,
        ttl_s=request.ttl_s,
        not_before=not_before,
        requested_by=request.requested_by,
        idempotency_key=request.idempotency_key,
        request_digest=digest,
        command_count=len(news),
    )
    stored = await store.insert_group(group, news)
    if stored is None:  # a concurrent request with the same key was stored first
        assert request.idempotency_key is not None
        again = await store.find_group_by_idempotency_key(
            request.requested_by, request.idempotency_key
        )
        assert again is not None
        return replayed(again.request_digest, digest, again), False, []
    commands, superseded = stored
    closed(superseded)
    for status in ("pending", "scheduled", "rejected"):
        count = sum(c.status == status for c in commands)
        if count:
            metrics.TRANSITIONS.labels(status).inc(count)
    log.info("command_group_created", group_id=str(group_id), commands=len(commands),
             type=command.name, requested_by=request.requested_by)  # fmt: skip
    return group, True, [c for c in commands if c.status == "pending"]


async def deliver_group(
    *, store: DeliveryStore, publisher: CommandPublisher, commands: list[CommandRecord]
) -> None:
    """Publish a group's pending commands (a round at a time; the republisher covers a crash)."""
    if commands:
        await deliver_many(store=store, publisher=publisher, commands=commands)


def _command(
    request: GroupRequest,
    command: CommandType,
    params: dict[str, Any],
    unit: UnitRecord,
    not_before: datetime | None,
    group_id: uuid.UUID,
    defaults: Defaults,
    digest: str,
) -> NewCommand:
    status, reason = ("scheduled" if not_before is not None else "pending"), None
    try:
        check_unit(command, params, unit,
                   default_rated_power_kw=defaults.rated_power_kw)  # fmt: skip
    except Refused as refused:
        status, reason = "rejected", str(refused.detail)
    return NewCommand(
        command_id=uuid.uuid4(),
        unit_id=unit.unit_id,
        kind=unit.kind,
        type=command.name,
        params=params,
        ttl_s=request.ttl_s,
        requested_by=request.requested_by,
        idempotency_key=None,
        request_digest=digest,
        not_before=not_before,
        status=status,
        reason=reason,
        group_id=group_id,
    )


def _unknown(
    request: GroupRequest,
    kind: str,
    type_name: str,
    params: dict[str, Any],
    unit_id: str,
    group_id: uuid.UUID,
    digest: str,
) -> NewCommand:
    return NewCommand(
        command_id=uuid.uuid4(), unit_id=unit_id, kind=kind, type=type_name, params=params,
        ttl_s=request.ttl_s, requested_by=request.requested_by, idempotency_key=None,
        request_digest=digest, status="rejected", reason=f"unknown unit {unit_id!r}",
        group_id=group_id,
    )  # fmt: skip


def _missing(selector: dict[str, Any], units: list[UnitRecord]) -> list[str]:
    found = {unit.unit_id for unit in units}
    return [unit_id for unit_id in selector.get("unit_ids", []) if unit_id not in found]
