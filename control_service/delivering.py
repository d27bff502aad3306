"""Handing commands to the broker: claim, publish concurrently, record each outcome in bulk."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Protocol

import structlog

from control_service import metrics
from control_service.model import CommandRecord

log = structlog.get_logger("control_service")
# Commands claimed and published per round: enough to fill the broker's confirm pipeline, few
# enough that none waits long for its confirm (a claim older than COMMAND_REPUBLISH_AFTER_S
# would be published again).
PUBLISHES_IN_FLIGHT = 64


class DeliveryFailed(Exception):
    """The broker did not confirm a command (down, slow): it stays pending and is retried."""


class Unroutable(DeliveryFailed):
    """The broker returned the command: no unit agent's queue is bound for the unit."""


class CommandPublisher(Protocol):
    """Puts a command on the `commands` exchange (control_service.delivery.BrokerPublisher)."""

    @property
    def ready(self) -> bool: ...
    async def publish(self, command: CommandRecord) -> None: ...


class DeliveryStore(Protocol):
    """The repository's part in delivery (db.commands.CommandRepository)."""

    async def get_command(self, command_id: uuid.UUID) -> CommandRecord | None: ...
    async def claim(self, command_ids: list[uuid.UUID]) -> list[CommandRecord]: ...
    async def mark_sent(self, command_ids: list[uuid.UUID]) -> list[CommandRecord]: ...
    async def fail_unroutable(
        self, command_ids: list[uuid.UUID], reason: str
    ) -> list[CommandRecord]: ...
    async def note_delivery_error(self, command_ids: list[uuid.UUID], error: str) -> None: ...


async def deliver_many(
    *,
    store: DeliveryStore,
    publisher: CommandPublisher,
    commands: list[CommandRecord],
    claimed: bool = False,
) -> list[CommandRecord]:
    """Publish pending commands and mark them `sent` once confirmed (`failed` when no queue
    takes them); returns their latest states.

    A command is claimed before it is published (`claimed`: already), a round at a time, so
    one superseded meanwhile never goes out and none is claimed long before its publish.
    """
    latest: list[CommandRecord] = []
    for start in range(0, len(commands), PUBLISHES_IN_FLIGHT):
        chunk = commands[start : start + PUBLISHES_IN_FLIGHT]
        if not claimed:
            chunk = await store.claim([command.command_id for command in chunk])
        latest += await _deliver_round(store, publisher, chunk)
    return latest


async def _deliver_round(
    store: DeliveryStore, publisher: CommandPublisher, commands: list[CommandRecord]
) -> list[CommandRecord]:
    outcomes = await _publish_all(publisher, commands)
    latest: dict[uuid.UUID, CommandRecord] = {c.command_id: c for c in commands}
    confirmed = [c.command_id for c, error in outcomes if error is None]
    unroutable: dict[str, list[uuid.UUID]] = defaultdict(list)
    unconfirmed: dict[str, list[uuid.UUID]] = defaultdict(list)
    for command, error in outcomes:
        if isinstance(error, Unroutable):
            unroutable[str(error)].append(command.command_id)
        elif error is not None:
            unconfirmed[str(error)].append(command.command_id)
    metrics.PUBLISHES.labels("confirmed").inc(len(confirmed))
    for command in await store.mark_sent(confirmed) if confirmed else []:
        latest[command.command_id] = command
        metrics.TRANSITIONS.labels("sent").inc()
    for reason, ids in unroutable.items():
        metrics.PUBLISHES.labels("unroutable").inc(len(ids))
        for command in await store.fail_unroutable(ids, reason):
            latest[command.command_id] = command
            metrics.TRANSITIONS.labels("failed").inc()
            log.warning("command_unroutable", command_id=str(command.command_id), reason=reason)
    for error_text, ids in unconfirmed.items():
        metrics.PUBLISHES.labels("failed").inc(len(ids))
        log.warning("command_not_delivered", commands=len(ids), error=error_text)
        await store.note_delivery_error(ids, error_text)
    moved_on = [i for i in latest if i not in confirmed or latest[i].status == "pending"]
    for command_id in moved_on:  # the unit may have answered first; show the latest state
        found = await store.get_command(command_id)
        if found is not None:
            latest[command_id] = found
    return list(latest.values())


async def _publish_all(
    publisher: CommandPublisher, commands: list[CommandRecord]
) -> list[tuple[CommandRecord, DeliveryFailed | None]]:
    async def one(command: CommandRecord) -> tuple[CommandRecord, DeliveryFailed | None]:
        try:
            await publisher.publish(command)
        except DeliveryFailed as error:
            return command, error
        return command, None

    return list(await asyncio.gather(*(one(command) for command in commands)))
