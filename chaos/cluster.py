"""`python -m chaos.cluster` (`make cluster-chaos`): the chaos run on a three-node cluster.

Starts three RabbitMQ nodes on this host beside the machine's own broker (chaos.rabbit_cluster),
runs the stack of `make chaos` against all three (each service lists every node), and under
its load and ledger kills the node leading `ingest.telemetry`, restarts it, restarts every node
in turn and pauses the (new) leader until the others give it up. Then checks that every reading
answered 202 is stored exactly once and every command is final and executed at most once, and
that the machine's broker is still the single node it was.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from types import FrameType

from chaos.cluster_faults import CLUSTER_PLAN, ClusterInjector
from chaos.commands import CommandFlow
from chaos.faults import Injector, Probe
from chaos.rabbit_cluster import Cluster, machine_broker_nodes
from chaos.report import render
from chaos.run import Outcome, run_chaos
from chaos.stack import Stack
from common.logging import configure_logging


async def run_cluster_chaos(
    *, cluster: Cluster, duration_s: float, rate: float, short: bool
) -> Outcome:
    """The chaos experiment with the cluster's faults, on the (started) cluster."""

    def injector(stack: Stack, probe: Probe, outage_s: float, flow: CommandFlow | None) -> Injector:
        return ClusterInjector(
            stack=stack, probe=probe, outage_s=outage_s, flow=flow, cluster=cluster
        )

    return await run_chaos(
        duration_s=duration_s,
        rate=rate,
        short=short,  # one-second gaps between faults; else spread over the duration
        broker_urls=cluster.amqp_url,
        plan=CLUSTER_PLAN,
        make_injector=injector,
    )


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks: the nodes are removed


def main() -> None:
    """Parse the command line, run the experiment, print the figures; exit 1 on any failure."""
    parser = argparse.ArgumentParser(
        prog="python -m chaos.cluster",
        description=(
            "Start a throwaway three-node RabbitMQ cluster on this host (the machine's "
            "rabbitmq-server, own node names, ports, directories and cookie; the machine's own "
            "broker is left alone), run a gateway, two consumers, the control service and a "
            "unit agent against it under steady load, SIGKILL the node leading ingest.telemetry, "
            "restart it, restart every node in turn, SIGSTOP the leader until the others give "
            "it up, SIGCONT it; then check every acknowledged reading is stored exactly once. "
            "Uses CHAOS_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432) and "
            "RABBITMQ_BIN_DIR (default /usr/lib/rabbitmq/bin); removes everything it created."
        ),
    )
    parser.add_argument("--duration", type=float, default=180.0, help="least seconds of load")
    parser.add_argument("--rate", type=float, default=500.0, help="readings per second offered")
    parser.add_argument(
        "--short", action="store_true", help="faults one second apart (used by make test)"
    )
    args = parser.parse_args()
    if args.duration <= 0 or args.rate <= 0:
        parser.error("--duration and --rate must be positive")
    duration_s = min(args.duration, 15.0) if args.short else args.duration
    configure_logging(level="WARNING", fmt="console")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    before = machine_broker_nodes()
    cluster = Cluster()
    try:
        started = time.monotonic()
        cluster.start()
        print(f"cluster of 3 nodes up in {time.monotonic() - started:.0f}s", file=sys.stderr)
        outcome = asyncio.run(
            run_cluster_chaos(
                cluster=cluster, duration_s=duration_s, rate=args.rate, short=args.short
            )
        )
    finally:
        cluster.close()
    after = machine_broker_nodes()
    print(render(outcome))
    print(f"  gateway 503 answers     {outcome.ledger.refusals.get('503', 0)}")
    print(f"  cluster nodes           {', '.join(node.name for node in cluster.nodes)}")
    single = after == before and len(after) == 1
    print(f"  machine broker after    {', '.join(after)} ({'unchanged' if single else 'CHANGED'})")
    print("  service logs: " + " ".join(outcome.logs))
    sys.exit(0 if outcome.ok and single else 1)


if __name__ == "__main__":
    main()
