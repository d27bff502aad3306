"""Transport of the consumer: the database connection it stores through and the AMQP consumer."""

from __future__ import annotations

import asyncio
import struct

import aio_pika
import asyncpg
import structlog

from common.broker import CONNECT_ERRORS, connect_failover
from common.codec import EvRow, MegapackRow, Ratings
from common.topology import Names, declare_telemetry
from db.telemetry import prepare_staging, store_rows
from ingestion_service.batcher import Batcher, RejectedRowsError, TransientStoreError

log = structlog.get_logger("ingestion_service")

_REJECTED_CLASSES = ("22", "23")  # SQLSTATE data exception, integrity constraint violation


class PgStore:
    """Stores through one connection (its staging tables are per connection); reconnects."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def __call__(
        self, megapack: list[MegapackRow], ev: list[EvRow], ratings: Ratings
    ) -> tuple[int, int]:
        try:
            conn = await self._connection()
            return await store_rows(conn=conn, megapack=megapack, ev=ev, ratings=ratings)
        except (asyncpg.DataError, struct.error, OverflowError, ValueError, TypeError) as error:
            # Rows that cannot even be encoded (an instant past what timestamptz holds, a
            # string where a number belongs): no retry can help. The connection may be mid-COPY.
            await self._drop()
            raise RejectedRowsError(f"rows cannot be encoded: {error!r}") from error
        except asyncpg.PostgresError as error:
            if (error.sqlstate or "")[:2] in _REJECTED_CLASSES:
                raise RejectedRowsError(str(error)) from error
            await self._drop()
            raise TransientStoreError(f"{type(error).__name__}: {error}") from error
        except (OSError, asyncpg.InterfaceError, TimeoutError) as error:
            await self._drop()
            raise TransientStoreError(f"{type(error).__name__}: {error}") from error

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=5, command_timeout=30)
            await prepare_staging(self._conn)
            log.info("database_connected")
        return self._conn

    async def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()


async def consume(
    *, url: str, names: Names, batcher: Batcher, prefetch: int, stop: asyncio.Event
) -> None:
    """Feed the ingest queue into the batcher until `stop` is set, then drain and return."""
    connection = await _connect(url, stop)
    if connection is None:
        return
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    queue = await declare_telemetry(channel, names)
    flusher = asyncio.create_task(batcher.run(), name="flusher")
    tag = await queue.consume(batcher.add)
    log.info("consuming", queue=names.ingest_queue, prefetch=prefetch)
    await asyncio.wait(
        [asyncio.create_task(stop.wait()), flusher], return_when=asyncio.FIRST_COMPLETED
    )
    if flusher.done():  # the flusher died of a bug: exit non-zero, unacked work is redelivered
        await connection.close()
        raise RuntimeError("flusher stopped unexpectedly") from flusher.exception()
    await queue.cancel(tag)  # no new deliveries; what is held is stored and acked next
    await batcher.stop()
    await flusher
    await connection.close()
    log.info("consumer_stopped")


async def _connect(url: str, stop: asyncio.Event) -> aio_pika.abc.AbstractRobustConnection | None:
    delay_s = 0.5
    while not stop.is_set():
        try:
            return await connect_failover(url)
        except CONNECT_ERRORS as error:
            log.warning("broker_connect_failed", error=str(error), retry_in_s=delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 5.0)
    return None
