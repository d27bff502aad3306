"""`python -m chaos`: load the stack, inject faults, prove nothing acknowledged was lost."""

from __future__ import annotations

import argparse
import asyncio

from chaos.report import render
from chaos.run import run_chaos
from common.logging import configure_logging


def main() -> None:
    """Parse the command line, run the experiment, print the figures; exit 1 on any loss."""
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description=(
            "Start a gateway and two ingestion consumers on a fresh database and AMQP prefix "
            "(reached through TCP proxies), send a steady load while killing consumers, cutting "
            "PostgreSQL and RabbitMQ and restarting the gateway, then check that every reading "
            "answered 202 is stored exactly once. Uses CHAOS_POSTGRES_URL (default "
            "postgresql://postgres@127.0.0.1:5432) and CHAOS_AMQP_URL (default "
            "amqp://guest:guest@127.0.0.1:5672/); removes everything it created."
        ),
    )
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=1000.0, help="readings per second offered")
    parser.add_argument("--short", action="store_true", help="a ~60 s run (used by make test)")
    args = parser.parse_args()
    if args.duration <= 0 or args.rate <= 0:
        parser.error("--duration and --rate must be positive")
    configure_logging(level="WARNING", fmt="console")
    duration_s = min(args.duration, 15.0) if args.short else args.duration
    outcome = asyncio.run(run_chaos(duration_s=duration_s, rate=args.rate, short=args.short))
    print(render(outcome))
    print("  service logs: " + " ".join(outcome.logs))
    raise SystemExit(0 if outcome.ok else 1)


if __name__ == "__main__":
    main()
