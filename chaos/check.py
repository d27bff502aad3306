"""Compare the ledger with the database, read the dead-letter queue, prove the checker bites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from chaos.load import FIELDS, Key, Kind, Ledger
from common.broker import connect_failover

_TABLES: dict[Kind, tuple[str, str]] = {
    "megapack": ("megapack_telemetry", "unit_id"),
    "ev": ("ev_telemetry", "vehicle_id"),
}
# Fixed table and column names only; the run's id prefix is a parameter.
_ROWS = {
    kind: f"SELECT {column} AS id, (extract(epoch FROM time) * 1000)::bigint AS time_ms, "  # noqa: S608
    f"{', '.join(FIELDS[kind])} FROM {table} WHERE {column} LIKE $1"
    for kind, (table, column) in _TABLES.items()
}
_DUPLICATES = {
    kind: f"SELECT count(*) - count(DISTINCT ({column}, time)) FROM {table} "  # noqa: S608
    f"WHERE {column} LIKE $1"
    for kind, (table, column) in _TABLES.items()
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """How the database compares with the ledger."""

    acknowledged: int
    stored: int  # acknowledged readings found, with the right values
    lost: int  # acknowledged, not in the database
    duplicated: int  # extra rows for one key
    mismatched: int  # in the database with other values than acknowledged
    unacknowledged_stored: int  # stored although never answered 202 (allowed: ambiguous replies)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.mismatched == 0


async def compare(*, conn: asyncpg.Connection, ledger: Ledger, id_prefix: str) -> Verdict:
    """Every acknowledged reading must be stored exactly once with its values."""
    stored: dict[Key, tuple[Any, ...]] = {}
    duplicated = 0
    for kind in _TABLES:
        for row in await conn.fetch(_ROWS[kind], id_prefix + "%"):
            values = tuple(list(v) if isinstance(v, list) else v for v in tuple(row)[2:])
            stored[(kind, row["id"], row["time_ms"])] = values
        duplicated += int(await conn.fetchval(_DUPLICATES[kind], id_prefix + "%"))
    lost = mismatched = found = 0
    for key, values in ledger.acked.items():
        row_values = stored.get(key)
        if row_values is None:
            lost += 1
        elif row_values != values:
            mismatched += 1
        else:
            found += 1
    extra = sum(1 for key in stored if key not in ledger.acked)
    return Verdict(len(ledger.acked), found, lost, duplicated, mismatched, extra)


async def negative_control(
    *, conn: asyncpg.Connection, ledger: Ledger, id_prefix: str, rows: int = 5
) -> dict[str, bool]:
    """In a rolled-back transaction: delete, alter and copy rows; the checker must see each."""
    megapack = sorted(key for key in ledger.acked if key[0] == "megapack")
    victims, altered, copied = megapack[:rows], megapack[rows], megapack[rows + 1]
    caught: dict[str, bool] = {}
    transaction = conn.transaction()
    await transaction.start()
    try:
        for _, unit_id, time_ms in victims:
            await conn.execute(
                "DELETE FROM megapack_telemetry WHERE unit_id = $1 "
                "AND time = TIMESTAMPTZ 'epoch' + $2 * INTERVAL '1 millisecond'",
                unit_id,
                time_ms,
            )
        await conn.execute(
            "UPDATE megapack_telemetry SET soc_percent = soc_percent + 0.5 WHERE unit_id = $1 "
            "AND time = TIMESTAMPTZ 'epoch' + $2 * INTERVAL '1 millisecond'",
            altered[1],
            altered[2],
        )
        # The primary key makes a duplicate impossible; drop it here to show the count works.
        constraint = await conn.fetchval(
            "SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'megapack_telemetry'::regclass AND contype = 'p'"
        )
        await conn.execute(f'ALTER TABLE megapack_telemetry DROP CONSTRAINT "{constraint}"')
        await conn.execute(
            "INSERT INTO megapack_telemetry SELECT * FROM megapack_telemetry WHERE unit_id = $1 "
            "AND time = TIMESTAMPTZ 'epoch' + $2 * INTERVAL '1 millisecond'",
            copied[1],
            copied[2],
        )
        verdict = await compare(conn=conn, ledger=ledger, id_prefix=id_prefix)
        caught["deleted rows counted as lost"] = verdict.lost == rows
        caught["altered row counted as mismatched"] = verdict.mismatched == 1
        caught["copied row counted as duplicated"] = verdict.duplicated == 1
    finally:
        await transaction.rollback()
    return caught


async def dead_letters(*, amqp_url: str, queue: str) -> list[bytes]:
    """Bodies of every message in the dead-letter queue (left in place)."""
    bodies: list[bytes] = []
    connection = await connect_failover(amqp_url, timeout_s=10)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.get_queue(queue)
        while (message := await dlq.get(no_ack=False, fail=False, timeout=10)) is not None:
            bodies.append(message.body)
    return bodies
