"""`python -m bench`: measure the telemetry pipeline against its parts and the issue-7 targets."""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop
from rich.console import Console

from bench import console as console_bench
from bench import groups, kpis, replay, scenarios, simulated
from bench.report import judge, print_report
from bench.stack import Options, Stack
from chaos.rabbit_cluster import Cluster

ALL = (
    "single",
    "json",
    "protobuf",
    "lag",
    "overload",
    "drain",
    "parts",
    "simulator",
    "groups",
    "replay",
    "kpis",
    "console",
)


def parse(argv: list[str] | None = None) -> Options:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Start the gateway and the ingestion consumer on a fresh database and AMQP "
        "prefix, drive load from separate processes, print a table and write JSON.",
    )
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--gateways", type=int, default=1, help="gateway processes")
    parser.add_argument("--consumers", type=int, default=1, help="ingestion consumer processes")
    parser.add_argument("--loaders", type=int, default=1, help="load generator processes")
    parser.add_argument(
        "--only", default=",".join(ALL), help=f"comma-separated scenarios of: {','.join(ALL)}"
    )
    parser.add_argument(
        "--json", dest="json_path", help="write results here (default bench/results/)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the gateways and consumers (repeatable), e.g. INGEST_PREFETCH=200",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record py-spy profiles of the services during each scenario into DIR",
    )
    parser.add_argument(
        "--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument(
        "--rabbit-cluster",
        action="store_true",
        help="start a throwaway three-node RabbitMQ cluster on this host (beside the machine's "
        "broker, removed afterwards) and run against all three nodes instead of --amqp-url",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/megapack"),
        help="server to use; the bench creates and drops its own database there",
    )
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    if any("=" not in pair for pair in args.env):
        parser.error("--env takes NAME=VALUE")
    if min(args.gateways, args.consumers, args.loaders) < 1 or args.duration <= 0:
        parser.error("--gateways, --consumers, --loaders must be >= 1 and --duration > 0")
    return Options(
        duration_s=args.duration, warmup_s=args.warmup, gateways=args.gateways,
        consumers=args.consumers, loaders=args.loaders, scenarios=chosen,
        amqp_url=args.amqp_url, database_url=args.database_url, json_path=args.json_path,
        profile_dir=args.profile,
        service_env=dict(pair.split("=", 1) for pair in args.env),
        rabbit_cluster=args.rabbit_cluster,
    )  # fmt: skip


async def run(stack: Stack) -> dict[str, Any]:
    """Every chosen scenario, in an order that keeps earlier backlogs out of later figures."""
    chosen = stack.options.scenarios
    results: dict[str, Any] = {}
    for name in ("single", "json", "protobuf"):
        if name in chosen:
            results[name] = await scenarios.end_to_end(stack, name, **scenarios.SHAPES[name])
    if "lag" in chosen:
        shape = {**scenarios.SHAPES["json"], "connections": 64}  # open loop: room for stalls
        results["lag"] = await scenarios.end_to_end(
            stack, "lag", rate=scenarios.LAG_OFFERED_PER_S, **shape
        )
    if "overload" in chosen:
        shape = {**scenarios.SHAPES["protobuf"], "connections": 384}  # > MAX_REQUESTS_IN_FLIGHT
        results["overload"] = await scenarios.end_to_end(stack, "overload", **shape)
    if "drain" in chosen:
        results["drain"] = await scenarios.drain(stack)
    results["storage"] = await scenarios.storage(stack)  # before raw COPY leaves dead rows
    if "parts" in chosen:
        results["parts"] = await scenarios.parts(stack)
    if "simulator" in chosen:
        results["simulator"] = await simulated.simulator(stack)
    if "groups" in chosen:
        results["groups"] = await groups.group_commands(stack)
    if "replay" in chosen:
        results["replay"] = await replay.replay(stack)
    if "kpis" in chosen:  # its own scratch database: 20 units x 30 days at 10 s
        server = stack.options.database_url.rsplit("/", 1)[0]
        results["kpis"] = await kpis.measure(server, units=20, days=30, interval_s=10.0, rounds=2)
    if "console" in chosen:  # the web console against 10,000 units (docs/PERFORMANCE.md)
        results["console"] = await console_bench.scenario(stack)
    return results


async def main_async(options: Options, console: Console) -> dict[str, Any]:
    """Start the stack, run, always clean up; returns everything measured."""
    load_before = os.getloadavg()
    stack = Stack(options, console)
    started = time.time()
    try:
        await stack.start()
        results = await run(stack)
        stack.sample_peaks()
    finally:
        peaks = {
            p.name: p.peak_rss_kb // 1024
            for p in [*stack.gateways, *stack.retired, *stack.consumers]
        }
        await stack.close()
    results["targets"] = judge(results)
    results["peak_rss_mb"] = peaks
    results["machine"] = {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": round(time.time() - started, 1),
    }  # fmt: skip
    results["run_id"] = stack.run_id
    results["options"] = {k: v for k, v in vars(options).items() if k not in ("json_path",)}
    return results


def main(argv: list[str] | None = None) -> None:
    """Parse, run, print the tables, write the JSON."""
    options = parse(argv)
    console = Console(width=None if Console().is_terminal else 150)
    cluster = Cluster() if options.rabbit_cluster else None
    try:
        if cluster is not None:
            console.print("starting a three-node RabbitMQ cluster ...")
            cluster.start()
            options = dataclasses.replace(
                options,
                amqp_url=cluster.amqp_url,
                broker_pids=tuple(pid for node in cluster.nodes if (pid := node.beam_pid())),
            )
        results = uvloop.run(main_async(options, console))
    finally:
        if cluster is not None:
            cluster.close()
    print_report(console, results)
    if "kpis" in results:
        kpis.print_results(console, results["kpis"])
    path = Path(options.json_path or f"bench/results/bench-{time.strftime('%Y%m%dT%H%M%S')}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    console.print(
        f"results written to {path} (load average before: {results['machine']['loadavg_before']})"
    )


if __name__ == "__main__":
    main()
