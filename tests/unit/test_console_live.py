"""The console's push hub: frames, changes only, and a lagging console cut off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson

from monitoring_service.web.live import QUEUE_FRAMES, LiveHub, Subscriber, frame


def test_a_frame_is_one_server_sent_event() -> None:
    assert frame("units", [{"unit_id": "MP-1"}]) == b'event: units\ndata: [{"unit_id":"MP-1"}]\n\n'
    name, _, data = frame("tick", {"now": "x"}).partition(b"\ndata: ")
    assert name == b"event: tick"
    assert orjson.loads(data.rstrip(b"\n")) == {"now": "x"}


async def test_a_console_that_stops_reading_is_cut_off_not_buffered() -> None:
    subscriber = Subscriber(watch=frozenset({"MP-1"}), evs=False)
    for _ in range(QUEUE_FRAMES):
        assert subscriber.offer(b"x")
    assert not subscriber.offer(b"one too many")
    assert subscriber.queue.qsize() == 1
    assert await asyncio.wait_for(subscriber.queue.get(), 1) is None  # the stream ends


def test_only_rows_not_pushed_before_are_fresh() -> None:
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    pushed: dict[str, datetime] = {}
    rows = [{"unit_id": "MP-1", "last_seen": seen}, {"unit_id": "MP-2", "last_seen": seen}]
    first = LiveHub._fresh(pushed, rows, "unit_id", "last_seen", keep=["MP-1", "MP-2"])  # type: ignore[arg-type]
    assert [row["unit_id"] for row in first] == ["MP-1", "MP-2"]
    again = LiveHub._fresh(pushed, rows, "unit_id", "last_seen", keep=["MP-1", "MP-2"])  # type: ignore[arg-type]
    assert again == []  # the look-back overlap brings them again: not sent twice
    moved = [{"unit_id": "MP-1", "last_seen": seen + timedelta(seconds=1)}]
    later = LiveHub._fresh(pushed, moved, "unit_id", "last_seen", keep=["MP-1"])  # type: ignore[arg-type]
    assert [dict(row) for row in later] == moved
    assert set(pushed) == {"MP-1"}  # a unit nobody watches any more is forgotten
