"""The console's push channel: one poller per process, only changes fanned out to consoles.

Once a second, while at least one console is connected, the hub asks the database what changed
since its previous look (the units each console watches, their commands, vehicle positions for
consoles showing the map, the alert event counter) and a new monitoring report, and sends each
console the part it watches as server-sent events. A console that cannot keep up is cut off; it
reconnects and reloads, so a slow browser never makes the service buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
import structlog

from common.db import TRANSIENT_DB_ERRORS
from db import console as console_sql
from monitoring_service.job import Monitor

log = structlog.get_logger("monitoring_service.web")

# A transaction stamps `updated_at` when it starts and may commit later: look back this far,
# and drop what was already pushed.
OVERLAP = timedelta(seconds=5)
QUEUE_FRAMES = 64  # ticks a console may lag behind before it is cut off
EV_LIMIT = 20_000


def frame(event: str, data: Any) -> bytes:
    """One server-sent event."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass(eq=False)
class Subscriber:
    """One open console: what it watches and what is waiting to be sent to it."""

    watch: frozenset[str]
    evs: bool
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_FRAMES))

    def offer(self, chunk: bytes) -> bool:
        """Queue a chunk; False (and the stream told to end) when the console lags too far."""
        try:
            self.queue.put_nowait(chunk)
            return True
        except asyncio.QueueFull:
            self.end()
            return False

    def end(self) -> None:
        """Tell the stream to end (whatever is still queued is dropped)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


def row_fields(row: asyncpg.Record) -> dict[str, Any]:
    """A row as a dict, without the bookkeeping column `updated_at`."""
    return {key: value for key, value in row.items() if key != "updated_at"}


class LiveHub:
    """Polls the database for changes and pushes them to the subscribed consoles."""

    def __init__(self, *, pool: asyncpg.Pool, monitor: Monitor, interval_s: float = 1.0) -> None:
        self._pool = pool
        self._monitor = monitor
        self._interval_s = interval_s
        self._subscribers: set[Subscriber] = set()
        self._since: datetime | None = None
        self._units_pushed: dict[str, datetime] = {}  # unit -> last_seen already pushed
        self._evs_pushed: dict[str, datetime] = {}
        self._commands_pushed: dict[str, datetime] = {}  # command -> updated_at pushed
        self._alerts_version: int | None = None
        self._report: tuple[datetime, bytes] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def consoles(self) -> int:
        """How many consoles are connected."""
        return len(self._subscribers)

    def subscribe(self, *, watch: Iterable[str], evs: bool) -> Subscriber:
        """A new console; it gets the current report at once, then changes."""
        subscriber = Subscriber(watch=frozenset(watch), evs=evs)
        self._subscribers.add(subscriber)
        report = self._current_report()
        if report is not None:
            subscriber.offer(report[1])
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="console-live-hub")
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """A console went away."""
        self._subscribers.discard(subscriber)

    async def close(self) -> None:
        """End every stream and the poller."""
        for subscriber in list(self._subscribers):
            subscriber.end()
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._subscribers:
            try:
                await self.tick()
            except TRANSIENT_DB_ERRORS as error:  # the next tick tries again
                log.warning("console_tick_failed", error=f"{type(error).__name__}: {error}")
            await asyncio.sleep(self._interval_s)
        self._since = None  # nobody listens: start afresh when a console comes back

    def _current_report(self) -> tuple[datetime, bytes] | None:
        latest = self._monitor.latest
        if latest is None:
            return None
        if self._report is None or self._report[0] != latest.generated_at:
            self._report = (latest.generated_at, frame("summary", latest.model_dump(mode="json")))
        return self._report

    async def tick(self) -> None:
        """One look at the database; each console gets what changed in what it watches."""
        subscribers = list(self._subscribers)
        watched = sorted(set().union(*(s.watch for s in subscribers))) if subscribers else []
        want_evs = any(s.evs for s in subscribers)
        async with self._pool.acquire() as conn:
            now = await console_sql.database_now(conn)
            since = (self._since or now) - OVERLAP
            units = await console_sql.units_changed(conn, unit_ids=watched, since=since)
            commands = await console_sql.commands_changed(conn, unit_ids=watched, since=since)
            evs = (
                await console_sql.ev_positions(conn, since=since, limit=EV_LIMIT)
                if want_evs
                else []
            )
            alerts_version = await console_sql.alerts_version(conn)
        self._since = now
        changed_units = self._fresh(self._units_pushed, units, "unit_id", "last_seen", keep=watched)
        changed_evs = self._fresh(self._evs_pushed, evs, "unit_id", "last_seen", keep=None)
        changed_commands = [
            (row["unit_id"], row["doc"])
            for row in commands
            if self._commands_pushed.get(row["command_id"]) != row["updated_at"]
        ]
        for row in commands:
            self._commands_pushed[row["command_id"]] = row["updated_at"]
        cutoff = since - OVERLAP
        self._commands_pushed = {k: v for k, v in self._commands_pushed.items() if v > cutoff}
        before = self._report[0] if self._report else None
        report = self._current_report()
        common = frame("tick", {"now": now.isoformat()})
        if report is not None and report[0] != before:
            common += report[1]
        if alerts_version != self._alerts_version:
            if self._alerts_version is not None:
                common += frame("alerts", {"version": alerts_version})
            self._alerts_version = alerts_version
        ev_frame = frame("evs", [row_fields(row) for row in changed_evs]) if changed_evs else b""
        for subscriber in subscribers:
            chunk = common
            mine = [row_fields(row) for row in changed_units if row["unit_id"] in subscriber.watch]
            if mine:
                chunk += frame("units", mine)
            docs = [doc for unit_id, doc in changed_commands if unit_id in subscriber.watch]
            if docs:
                chunk += b"event: commands\ndata: [" + ",".join(docs).encode() + b"]\n\n"
            if subscriber.evs:
                chunk += ev_frame
            if not subscriber.offer(chunk):
                log.info("console_cut_off", reason="not reading its stream")
                self.unsubscribe(subscriber)

    @staticmethod
    def _fresh(
        pushed: dict[str, datetime],
        rows: list[asyncpg.Record],
        key: str,
        stamp: str,
        *,
        keep: list[str] | None,
    ) -> list[asyncpg.Record]:
        fresh = [row for row in rows if pushed.get(row[key]) != row[stamp]]
        for row in fresh:
            pushed[row[key]] = row[stamp]
        if keep is not None:  # forget units nobody watches any more
            wanted = set(keep)
            for unit_id in [unit_id for unit_id in pushed if unit_id not in wanted]:
                del pushed[unit_id]
        return fresh
