"""Judge a bench run against the targets of issue 7 and print it as tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

TARGET_PROTOBUF_PER_S = 100_000
TARGET_JSON_PER_S = 50_000
TARGET_SINGLE_RATIO = 0.60
TARGET_LAG_P99_MS = 100.0
TARGET_DRAIN_RATIO = 0.50
TARGET_SIMULATOR_CORES = 1.0
MEMORY_BUDGET_MB = 300  # per gateway / consumer under overload: prefetch and pending caps


def _get(results: dict[str, Any], *path: str) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: what was measured, the target, and whether it is met."""
    single_rps = _get(results, "single", "requests_per_s")
    bare_rps = _get(results, "parts", "bare_endpoint", "requests_per_s")
    gateway_cpu = _get(results, "single", "cpu_us_per_reading", "gateways")
    bare_cpu = _get(results, "parts", "bare_endpoint", "cpu_us_per_request")
    drain = _get(results, "drain", "rows_per_s")
    copy = _get(results, "parts", "copy", "rows_per_s")
    overload = _get(results, "overload", "rss_mb") or {}
    peak_mb = max((m["max"] for m in overload.values()), default=None)
    rows: list[tuple[str, Any, str, Callable[[Any], bool]]] = [
        ("protobuf batched (1,000/request) readings/s", _get(results, "protobuf", "landed_per_s"),
         f">= {TARGET_PROTOBUF_PER_S:,}", lambda v: v >= TARGET_PROTOBUF_PER_S),
        ("JSON batched (100/request) readings/s", _get(results, "json", "landed_per_s"),
         f">= {TARGET_JSON_PER_S:,}", lambda v: v >= TARGET_JSON_PER_S),
        ("single-reading requests/s over bare endpoint", _ratio(single_rps, bare_rps),
         f">= {TARGET_SINGLE_RATIO}", lambda v: v >= TARGET_SINGLE_RATIO),
        ("  same, by CPU per request (bare / gateway)", _ratio(bare_cpu, gateway_cpu),
         f">= {TARGET_SINGLE_RATIO}", lambda v: v >= TARGET_SINGLE_RATIO),
        ("lag p99 ms at 10,000 readings/s", _get(results, "lag", "lag_ms", "p99"),
         f"<= {TARGET_LAG_P99_MS:.0f}", lambda v: v <= TARGET_LAG_P99_MS),
        ("ingestion drain over raw COPY", _ratio(drain, copy),
         f">= {TARGET_DRAIN_RATIO}", lambda v: v >= TARGET_DRAIN_RATIO),
        ("peak RSS MB of gateway/consumer under overload", peak_mb,
         f"<= {MEMORY_BUDGET_MB}", lambda v: v <= MEMORY_BUDGET_MB),
        ("simulator 5k+5k at 1 Hz, cores", _get(results, "simulator", "cpu_cores"),
         f"<= {TARGET_SIMULATOR_CORES}", lambda v: v <= TARGET_SIMULATOR_CORES),
    ]  # fmt: skip
    lost = sum(part.get("lost", 0) for part in results.values() if isinstance(part, dict))
    judged = [
        {
            "target": name,
            "measured": value,
            "goal": goal,
            "met": None if value is None else bool(check(value)),
        }
        for name, value, goal, check in rows
    ]
    judged.append({"target": "readings lost (rows != accepted)", "measured": lost,
                   "goal": "0", "met": lost == 0})  # fmt: skip
    return judged


def _mark(met: bool | None) -> str:
    return {True: "[green]met[/green]", False: "[red]missed[/red]", None: "[dim]not run[/dim]"}[met]


def print_report(console: Console, results: dict[str, Any]) -> None:
    """The scenario table, the part limits, the targets and the peak memory."""
    scenarios = Table(title="End to end (readings/s into the database)")
    for column in ("scenario", "requests/s", "accepted/s", "landed/s", "lag p50/p95/p99 ms",
                   "HTTP p99 ms", "lost", "cores gw/cons/pg/mq/load/box"):  # fmt: skip
        scenarios.add_column(column, justify="right" if column != "scenario" else "left")
    for name in ("single", "json", "protobuf", "lag", "overload"):
        r = results.get(name)
        if not r:
            continue
        c, lag = r["cpu_cores"], r["lag_ms"]
        scenarios.add_row(
            name, f"{r['requests_per_s']:,.0f}", f"{r['accepted_per_s']:,}",
            f"{r['landed_per_s']:,}", f"{lag['p50']}/{lag['p95']}/{lag['p99']}",
            str(r["http_latency_ms"]["p99"]), str(r["lost"]),
            f"{c['gateways']}/{c['consumers']}/{c['postgres']}/{c['rabbitmq']}/"
            f"{c['loader']}/{c['machine']}",
        )  # fmt: skip
    console.print(scenarios)
    parts = results.get("parts")
    if parts:
        limits = Table(title="Limits of the parts")
        limits.add_column("part")
        limits.add_column("rate", justify="right")
        limits.add_row("raw asyncpg COPY", f"{parts['copy']['rows_per_s']:,.0f} rows/s")
        for name, p in parts["publish"].items():
            limits.add_row(f"raw publish+confirm, {name}",
                           f"{p['messages_per_s']:,.0f} messages/s")  # fmt: skip
        limits.add_row("bare FastAPI endpoint",
                       f"{parts['bare_endpoint']['requests_per_s']:,.0f} requests/s")  # fmt: skip
        if "drain" in results:
            limits.add_row("ingestion drain", f"{results['drain']['rows_per_s']:,} rows/s")
        console.print(limits)
    targets = Table(title="Targets (issue 7)")
    for column in ("target", "measured", "goal", "verdict"):
        targets.add_column(column)
    for row in results["targets"]:
        targets.add_row(row["target"], str(row["measured"]), row["goal"], _mark(row["met"]))
    console.print(targets)
    memory = Table(title="Peak RSS (VmHWM)")
    memory.add_column("process")
    memory.add_column("MB", justify="right")
    for name, mb in results["peak_rss_mb"].items():
        memory.add_row(name, str(mb))
    console.print(memory)


def markdown(results: dict[str, Any]) -> str:
    """The same figures as Markdown tables (for docs/PERFORMANCE.md)."""
    lines = [
        "| scenario | requests/s | accepted/s | landed/s | lag p50/p95/p99 ms | lost |"
        " CPU µs per reading: gateway / consumer / PostgreSQL / RabbitMQ |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("single", "json", "protobuf", "lag", "overload"):
        r = results.get(name)
        if r:
            lag, us = r["lag_ms"], r["cpu_us_per_reading"]
            lines.append(
                f"| {name} | {r['requests_per_s']:,.0f} | {r['accepted_per_s']:,} | "
                f"{r['landed_per_s']:,} | {lag['p50']} / {lag['p95']} / {lag['p99']} | "
                f"{r['lost']} | {us['gateways']} / {us['consumers']} / {us['postgres']} / "
                f"{us['rabbitmq']} |"
            )
    lines += ["", "| target | measured | goal | verdict |", "| --- | ---: | ---: | --- |"]
    verdicts = {True: "met", False: "**missed**", None: "not run"}
    for row in results["targets"]:
        lines.append(
            f"| {row['target'].strip()} | {row['measured']} | {row['goal']} | "
            f"{verdicts[row['met']]} |"
        )
    return "\n".join(lines)


def main() -> None:
    """`python -m bench.report RESULTS.json`: print a run's figures as Markdown."""
    import sys

    import orjson

    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print("usage: python -m bench.report RESULTS.json")
        raise SystemExit(0 if len(sys.argv) == 2 else 2)
    with open(sys.argv[1], "rb") as source:
        print(markdown(orjson.loads(source.read())))


if __name__ == "__main__":
    main()
