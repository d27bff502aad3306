"""`python -m ingestion_service [run | replay-dead-letters]`."""

from __future__ import annotations

import argparse
import asyncio
import signal

import prometheus_client
import structlog

from common.logging import configure_logging
from common.settings import load_settings
from common.topology import Names
from ingestion_service.batcher import Batcher
from ingestion_service.consumer import PgStore, consume
from ingestion_service.replay import replay_dead_letters
from ingestion_service.settings import IngestionSettings

log = structlog.get_logger("ingestion_service")


async def run(settings: IngestionSettings) -> None:
    """Consume until SIGTERM / SIGINT, then store and acknowledge what is held and exit."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = PgStore(settings.database_url)
    batcher = Batcher(
        store=store,
        max_readings=settings.ingest_batch_readings,
        max_wait_s=settings.ingest_batch_wait_ms / 1000,
    )
    try:
        await consume(
            url=settings.amqp_url,
            names=Names(settings.amqp_prefix),
            batcher=batcher,
            prefetch=settings.ingest_prefetch,
            stop=stop,
        )
    finally:
        await store.close()


def main() -> None:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(
        prog="python -m ingestion_service",
        description="Telemetry ingestion consumer (settings from the environment; see README).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="consume the ingest queue into the database (default)")
    replay = commands.add_parser(
        "replay-dead-letters", help="show, or re-queue, the messages in the dead-letter queue"
    )
    replay.add_argument("--requeue", action="store_true", help="publish them back to telemetry")
    replay.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")
    args = parser.parse_args()
    settings = load_settings(IngestionSettings, "ingestion_service")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    if args.command == "replay-dead-letters":
        asyncio.run(replay_dead_letters(settings, requeue=args.requeue, limit=args.limit))
        return
    if settings.ingestion_metrics_port:
        prometheus_client.start_http_server(settings.ingestion_metrics_port)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
