"""Group deliveries into database batches (by count or by time), store, then acknowledge.

Nothing is acknowledged before its rows are committed. While the database is unreachable the
batch is retried with backoff and nothing is acknowledged; the broker's prefetch limit stops
further deliveries. A message that cannot be decoded, or whose rows the database refuses, is
rejected to the dead-letter queue and the rest keep flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from google.protobuf.message import DecodeError

from common.codec import (
    EvRow,
    MegapackRow,
    Ratings,
    envelope_ratings,
    envelope_rows,
    merge_ratings,
)
from ingestion_service import metrics
from proto.megapack.v1 import telemetry_pb2 as pb

log = structlog.get_logger("ingestion_service")


class Delivery(Protocol):
    """What the batcher needs of a broker message (aio-pika's IncomingMessage fits)."""

    @property
    def body(self) -> bytes: ...
    @property
    def channel(self) -> Any: ...
    async def ack(self, multiple: bool = False) -> None: ...
    async def reject(self, requeue: bool = False) -> None: ...


class TransientStoreError(Exception):
    """The database is unreachable or busy: retry the same batch later."""


class RejectedRowsError(Exception):
    """The database refused the rows themselves: retrying cannot help."""


# (Megapack rows, EV rows, each unit's ratings) -> (new Megapack rows, new EV rows)
Store = Callable[[list[MegapackRow], list[EvRow], Ratings], Awaitable[tuple[int, int]]]


@dataclass(slots=True)
class _Item:
    delivery: Delivery
    megapack: list[MegapackRow]
    ev: list[EvRow]
    ratings: Ratings
    received_at_us: list[int]

    @property
    def readings(self) -> int:
        return len(self.megapack) + len(self.ev)


class Batcher:
    """Accumulates deliveries and stores them in batches, one batch at a time."""

    def __init__(
        self, *, store: Store, max_readings: int, max_wait_s: float, max_backoff_s: float = 5.0
    ) -> None:
        self._store = store
        self._max_readings = max_readings
        self._max_wait_s = max_wait_s
        self._max_backoff_s = max_backoff_s
        self._items: list[_Item] = []
        self._readings = 0
        self._has_items = asyncio.Event()
        self._full = asyncio.Event()
        self._stopping = False
        self.flushes = 0

    async def add(self, delivery: Delivery) -> None:
        """Take one delivery (the consumer callback); rows are built now, while a flush waits."""
        try:
            envelope = pb.TelemetryEnvelope.FromString(delivery.body)
            megapack, ev = envelope_rows([envelope])
            ratings = envelope_ratings([envelope])
        except (DecodeError, RuntimeError, KeyError) as error:
            await self._dead_letter(delivery, f"undecodable: {error!r}")
            return
        received = [batch.received_at_us for batch in envelope.batches]
        item = _Item(delivery, megapack, ev, ratings, received)
        self._items.append(item)
        self._readings += item.readings
        self._has_items.set()
        if self._readings >= self._max_readings:
            self._full.set()

    async def run(self) -> None:
        """Flush batches until stopped; a stop flushes what is held first."""
        while True:
            await self._has_items.wait()
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._max_wait_s)
            await self.flush()
            if self._stopping and not self._items:
                return

    async def stop(self) -> None:
        """Ask run() to flush what it holds and return."""
        self._stopping = True
        self._has_items.set()
        self._full.set()

    async def flush(self) -> None:
        """Store everything held, then acknowledge it."""
        items, self._items, self._readings = self._items, [], 0
        self._has_items.clear()
        self._full.clear()
        if not items:
            return
        started = time.perf_counter()
        megapack: list[MegapackRow] = []
        ev: list[EvRow] = []
        ratings: Ratings = {}
        for item in items:
            megapack.extend(item.megapack)
            ev.extend(item.ev)
            merge_ratings(ratings, item.ratings)  # per value, the latest a unit reported
        try:
            stored = await self._store_retrying(megapack, ev, ratings)
        except RejectedRowsError:
            await self._store_one_by_one(items)
            return
        metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
        self._count(stored, len(megapack) + len(ev))
        await _ack_all([item.delivery for item in items])
        self._observe_lag(items)
        self.flushes += 1

    async def _store_retrying(
        self, megapack: list[MegapackRow], ev: list[EvRow], ratings: Ratings
    ) -> tuple[int, int]:
        delay_s = 0.1
        while True:
            try:
                return await self._store(megapack, ev, ratings)
            except TransientStoreError as error:
                metrics.DB_ERRORS.inc()
                log.warning("store_failed_retrying", error=str(error), retry_in_s=delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self._max_backoff_s)

    async def _store_one_by_one(self, items: list[_Item]) -> None:
        for item in items:
            megapack, ev = item.megapack, item.ev
            try:
                stored = await self._store_retrying(megapack, ev, item.ratings)
            except RejectedRowsError as error:
                await self._dead_letter(item.delivery, f"rows refused: {error}")
                continue
            self._count(stored, len(megapack) + len(ev))
            await _ack_all([item.delivery])

    @staticmethod
    def _count(stored: tuple[int, int], offered: int) -> None:
        metrics.STORED.labels("megapack").inc(stored[0])
        metrics.STORED.labels("ev").inc(stored[1])
        metrics.DUPLICATES.inc(offered - sum(stored))
        metrics.MESSAGES.labels("stored").inc()

    @staticmethod
    def _observe_lag(items: list[_Item]) -> None:
        now_us = time.time_ns() // 1000
        for item in items:
            for received_at_us in item.received_at_us:
                metrics.LAG_SECONDS.observe(max(0, now_us - received_at_us) / 1e6)

    @staticmethod
    async def _dead_letter(delivery: Delivery, reason: str) -> None:
        metrics.MESSAGES.labels("dead_lettered").inc()
        log.error("message_dead_lettered", reason=reason[:300], size=len(delivery.body))
        try:
            await delivery.reject(requeue=False)
        except Exception as error:  # channel gone: the broker redelivers it
            log.warning("reject_failed", error=repr(error))


async def _ack_all(deliveries: list[Delivery]) -> None:
    """Acknowledge committed deliveries: one multiple-ack per channel when they share one."""
    try:  # even reading `.channel` raises once the channel is closed
        shared = len(deliveries) > 1 and len({id(d.channel) for d in deliveries}) == 1
        targets = deliveries[-1:] if shared else deliveries
        for delivery in targets:
            await delivery.ack(multiple=shared)
    except Exception as error:  # channel closed: the broker redelivers; storage dedups
        log.warning("ack_failed_redelivery_expected", error=repr(error))
