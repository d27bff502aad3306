"""The batcher stores before it acknowledges, retries while the database is down, and
dead-letters only what cannot be stored."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from common.codec import EvRow, MegapackRow, Ratings
from ingestion_service.batcher import Batcher, RejectedRowsError, TransientStoreError
from proto.megapack.v1 import telemetry_pb2 as pb


class FakeDelivery:
    """A broker message; its delivery tag counts up per channel, as AMQP's do."""

    _tags: ClassVar[dict[tuple[int, int], int]] = {}

    def __init__(self, body: bytes, log: list[str], channel: object) -> None:
        self.body = body
        self.channel = channel
        self._log = log
        key = (id(log), id(channel))
        self.delivery_tag = self._tags[key] = self._tags.get(key, 0) + 1

    async def ack(self, multiple: bool = False) -> None:
        self._log.append(f"ack{'*' if multiple else ''}:{self.delivery_tag}")

    async def reject(self, requeue: bool = False) -> None:
        self._log.append(f"reject:{requeue}")


def _body(unit: str, count: int) -> bytes:
    readings = [
        pb.MegapackReading(unit_id=unit, timestamp_ms=i, state=pb.UNIT_STATE_IDLE)
        for i in range(count)
    ]
    return pb.TelemetryEnvelope(batches=[pb.TelemetryBatch(megapack=readings)]).SerializeToString()


class FakeStore:
    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.failures = failures or []
        self.calls: list[int] = []
        self.rows: list[Any] = []
        self.ratings: list[Ratings] = []

    async def __call__(
        self, megapack: list[MegapackRow], ev: list[EvRow], ratings: Ratings
    ) -> tuple[int, int]:
        self.calls.append(len(megapack))
        self.ratings.append(ratings)
        if self.failures:
            raise self.failures.pop(0)
        self.rows.extend(megapack)
        return len(megapack), len(ev)


async def test_store_then_one_multiple_ack_per_batch() -> None:
    log: list[str] = []
    store = FakeStore()
    batcher = Batcher(store=store, max_readings=10, max_wait_s=5)
    for i in range(4):
        await batcher.add(FakeDelivery(_body(f"U{i}", 3), log, channel="ch"))
    assert log == [], "nothing is acknowledged before the batch is stored"
    await batcher.flush()
    assert store.calls == [12]
    assert log == ["ack*:4"], "one multiple-ack, on the last delivery: it covers all four"


async def test_ratings_reach_the_store_per_unit_and_value_the_latest_winning() -> None:
    def rated(unit: str, kw: float, kwh: float | None = None) -> bytes:
        reading = pb.MegapackReading(unit_id=unit, rated_power_kw=kw, capacity_kwh=kwh)
        batch = pb.TelemetryBatch(megapack=[reading])
        return pb.TelemetryEnvelope(batches=[batch]).SerializeToString()

    store = FakeStore()
    batcher = Batcher(store=store, max_readings=10, max_wait_s=5)
    bodies = (rated("A", 979.0, 3916.0), rated("B", 1927.0, 3854.0), _body("C", 1))
    for body in (*bodies, rated("A", 1000.0), rated("B", 1900.0, 3800.0)):
        await batcher.add(FakeDelivery(body, [], channel="ch"))
    await batcher.flush()
    # A's later reading left its capacity out: the earlier one stays
    assert store.ratings == [{"A": (1000.0, 3916.0), "B": (1900.0, 3800.0)}]


async def test_full_batch_flushes_without_waiting_for_the_timer() -> None:
    log: list[str] = []
    store = FakeStore()
    batcher = Batcher(store=store, max_readings=5, max_wait_s=60)
    runner = asyncio.create_task(batcher.run())
    await batcher.add(FakeDelivery(_body("U", 6), log, channel="ch"))
    for _ in range(100):
        if log:
            break
        await asyncio.sleep(0.01)
    assert store.calls == [6]
    await batcher.stop()
    await runner


async def test_database_down_retries_and_acks_nothing_until_stored() -> None:
    log: list[str] = []
    store = FakeStore([TransientStoreError("down"), TransientStoreError("still down")])
    batcher = Batcher(store=store, max_readings=100, max_wait_s=5, max_backoff_s=0.01)
    await batcher.add(FakeDelivery(_body("U", 2), log, channel="ch"))
    await batcher.flush()
    assert store.calls == [2, 2, 2]
    assert len(store.rows) == 2
    assert log == ["ack:1"]


async def test_undecodable_message_is_dead_lettered_and_others_flow() -> None:
    log: list[str] = []
    store = FakeStore()
    batcher = Batcher(store=store, max_readings=100, max_wait_s=5)
    await batcher.add(FakeDelivery(b"\xff\xff\xff", log, channel="ch"))
    await batcher.add(FakeDelivery(_body("U", 2), log, channel="ch"))
    await batcher.flush()
    assert log[0] == "reject:False"
    assert len(store.rows) == 2


async def test_rows_the_database_refuses_are_isolated_per_message() -> None:
    log: list[str] = []
    store = FakeStore([RejectedRowsError("bad batch"), RejectedRowsError("bad message")])
    batcher = Batcher(store=store, max_readings=100, max_wait_s=5)
    await batcher.add(FakeDelivery(_body("BAD", 1), log, channel="ch"))
    await batcher.add(FakeDelivery(_body("OK", 2), log, channel="ch"))
    await batcher.flush()
    assert store.calls == [3, 1, 2]
    assert log == ["reject:False", "ack:2"]
    assert [row[0] for row in store.rows] == ["OK", "OK"]


async def test_deliveries_from_different_channels_are_acked_one_by_one() -> None:
    log: list[str] = []
    batcher = Batcher(store=FakeStore(), max_readings=100, max_wait_s=5)
    await batcher.add(FakeDelivery(_body("A", 1), log, channel="old"))
    await batcher.add(FakeDelivery(_body("B", 1), log, channel="new"))
    await batcher.flush()
    assert log == ["ack:1", "ack:1"], "tag 1 of each channel, each acked alone"


class ClosedChannelDelivery(FakeDelivery):
    @property
    def channel(self) -> object:
        raise RuntimeError("channel closed")

    @channel.setter
    def channel(self, value: object) -> None:
        pass

    async def ack(self, multiple: bool = False) -> None:
        raise RuntimeError("channel closed")


async def test_a_closed_channel_at_ack_time_does_not_stop_the_batcher() -> None:
    log: list[str] = []
    store = FakeStore()
    batcher = Batcher(store=store, max_readings=100, max_wait_s=5)
    await batcher.add(ClosedChannelDelivery(_body("A", 1), log, channel=None))
    await batcher.add(ClosedChannelDelivery(_body("B", 1), log, channel=None))
    await batcher.flush()  # stored; the broker will redeliver and storage deduplicates
    assert len(store.rows) == 2
    assert log == []
