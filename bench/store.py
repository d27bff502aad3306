"""`python -m bench.store [--btree]`: PostgreSQL CPU per stored reading, the consumer's way.

Creates a scratch database, migrates it, stores rounds of 200,000 gateway-shaped Megapack rows
in 10,000-row batches with `db.telemetry.store_rows`, and prints the CPU time of the backend
per row (from /proc, so PostgreSQL must run on this machine). `--btree` puts back the indexes
that migration 0006 replaced (a B-tree on time and one on site and time) for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import asyncpg

from bench.bodies import BodyMaker
from bench.procs import cpu_seconds
from common.codec import envelope_rows
from db.migrate import migrate
from db.telemetry import prepare_staging, store_rows
from proto.megapack.v1 import telemetry_pb2 as pb

BTREE = """
DROP INDEX IF EXISTS megapack_telemetry_time_brin;
CREATE INDEX megapack_telemetry_time_idx ON megapack_telemetry (time DESC);
CREATE INDEX megapack_telemetry_site_time_idx ON megapack_telemetry (site_id, time DESC);
"""


async def measure(server_url: str, *, btree: bool, rounds: int) -> list[float]:
    """µs of backend CPU per stored row, one figure per round of 200,000 rows."""
    database = f"megapack_store_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{server_url}/postgres")
    url = f"{server_url}/{database}"
    try:
        await migrate(url)
        conn = await asyncpg.connect(url)
        if btree:
            await conn.execute(BTREE)
        await prepare_staging(conn)
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        maker = BodyMaker(tag="STORE", readings=1000, encoding="protobuf")
        figures = []
        for _ in range(rounds):
            batches = []
            for _ in range(20):
                now_us = time.time_ns() // 1000
                envelopes = [
                    pb.TelemetryEnvelope.FromString(maker.envelope(received_at_us=now_us))
                    for _ in range(10)
                ]
                batches.append(envelope_rows(envelopes)[0])
            before = cpu_seconds(pid)
            for rows in batches:
                await store_rows(conn=conn, megapack=rows, ev=[])
            figures.append((cpu_seconds(pid) - before) / 200_000 * 1e6)
        await conn.close()
        return figures
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    """Parse flags, measure, print one line per round."""
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    parser.add_argument("--btree", action="store_true", help="the indexes before migration 0006")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 200,000 rows")
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.server_url, btree=args.btree, rounds=args.rounds))
    label = "B-tree time + site indexes" if args.btree else "indexes as migrated (BRIN time)"
    print(f"{label}: " + ", ".join(f"{f:.2f}" for f in figures) + " µs of PostgreSQL CPU per row")


if __name__ == "__main__":
    main()
