"""One chaos run: start the stack, load it, inject faults, drain, check, report."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import httpx
import structlog

from chaos.check import Verdict, compare, dead_letters, negative_control
from chaos.commands import AckObserver, CommandFlow, CommandVerdict, judge
from chaos.faults import Fault, Injector, Probe
from chaos.load import Ledger, LoadGenerator
from chaos.stack import Stack
from tests.support.stack import DEVICE_SECRET, OPERATOR_SECRET, ROOT

log = structlog.get_logger("chaos")

SHORT_PLAN = ["kill0", "pg", "poison", "ctl_kill", "kill1", "amqp", "agent", "term", "kill"]
FULL_PLAN = [
    "kill0", "pg", "poison", "ctl_kill", "kill1", "amqp", "agent", "term", "kill0",
    "ctl_term", "pg", "kill", "agent", "amqp",
]  # fmt: skip
# Commands join the run once the control service and the simulator exist.
COMMANDS = all(
    (ROOT / module / "__main__.py").exists() for module in ("control_service", "simulator")
)


@dataclass
class Outcome:
    """Everything the report prints and the exit code depends on."""

    ledger: Ledger
    verdict: Verdict
    faults: list[Fault]
    planted: int
    dead_letters: Counter[str]  # "planted" / "unexpected" / "planted but missing"
    controls: dict[str, bool]
    retried_landed: int
    commands: CommandVerdict | None
    elapsed_s: float
    load_s: float
    crashes: list[str]
    logs: list[str] = field(default_factory=list)
    # Whether some request must have been refused and retried (every fault of `make chaos`
    # refuses some; a cluster's failover may be quick enough to refuse none).
    require_retries: bool = True

    @property
    def ok(self) -> bool:
        return (
            self.verdict.ok
            and not self.ledger.unexpected
            and self.ledger.abandoned == 0
            and self.dead_letters["unexpected"] == 0
            and self.dead_letters["planted but missing"] == 0
            and (len(self.ledger.retried_keys) > 0 or not self.require_retries)
            and self.retried_landed == len(self.ledger.retried_keys)
            and all(self.controls.values())
            and all(fault.recovery_s is not None for fault in self.faults)
            and not self.crashes
            and (self.commands is None or self.commands.ok)
        )


async def _drain(
    conn: asyncpg.Connection, ledger: Ledger, prefix: str, timeout_s: float
) -> Verdict:
    """Wait until every acknowledged reading is stored, or until time runs out."""
    deadline = time.monotonic() + timeout_s
    verdict = await compare(conn=conn, ledger=ledger, id_prefix=prefix)
    while verdict.lost and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        verdict = await compare(conn=conn, ledger=ledger, id_prefix=prefix)
    return verdict


async def _dead_letter_tally(stack: Stack, planted: list[bytes]) -> Counter[str]:
    # Dead-lettering is asynchronous: give the consumers a moment to reject what they hold.
    deadline = time.monotonic() + 30
    found = await dead_letters(amqp_url=stack.amqp_url, queue=stack.names.dead_letter_queue)
    while len(found) < len(planted) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        found = await dead_letters(amqp_url=stack.amqp_url, queue=stack.names.dead_letter_queue)
    tally: Counter[str] = Counter()
    remaining = list(planted)
    for body in found:
        if body in remaining:
            remaining.remove(body)
            tally["planted"] += 1
        else:
            tally["unexpected"] += 1
    tally["planted but missing"] = len(remaining)
    return tally


MakeInjector = Callable[[Stack, Probe, float, CommandFlow | None], Injector]


def _injector(stack: Stack, probe: Probe, outage_s: float, flow: CommandFlow | None) -> Injector:
    return Injector(stack=stack, probe=probe, outage_s=outage_s, flow=flow)


async def run_chaos(
    *,
    duration_s: float,
    rate: float,
    short: bool,
    broker_urls: str | None = None,
    plan: list[str] | None = None,
    make_injector: MakeInjector = _injector,
) -> Outcome:
    """Run the whole experiment on a stack of its own, which is removed afterwards.

    `broker_urls` (a cluster's nodes), `plan` and `make_injector` let the cluster run
    (chaos.cluster) reuse the stack, load, ledger and checks with faults of its own.
    """
    started = time.monotonic()
    stack = Stack(
        with_commands=COMMANDS,
        broker_urls=broker_urls,
        ready_timeout_s=30.0 if broker_urls is None else 180.0,
    )
    plan = plan or (SHORT_PLAN if short else FULL_PLAN)
    try:
        await stack.start()
        conn = await asyncpg.connect(stack.database_url)
        try:
            outcome = await _experiment(
                stack, conn, duration_s, rate, short, started, plan, make_injector
            )
        finally:
            await conn.close()
    finally:
        await stack.close()
    outcome.require_retries = broker_urls is None
    return outcome


async def _experiment(
    stack: Stack,
    conn: asyncpg.Connection,
    duration_s: float,
    rate: float,
    short: bool,
    started: float,
    plan: list[str],
    make_injector: MakeInjector,
) -> Outcome:
    prefix = f"CHAOS-{stack.run_id}-"
    ledger = Ledger()
    observer = AckObserver(stack)
    async with (
        httpx.AsyncClient(
            base_url=stack.url("gateway"),
            headers={"X-API-Key": DEVICE_SECRET},
            limits=httpx.Limits(max_connections=64),
        ) as client,
        httpx.AsyncClient(
            base_url=stack.url("control"), headers={"X-API-Key": OPERATOR_SECRET}
        ) as operator,
    ):
        load = LoadGenerator(client=client, ledger=ledger, run_id=stack.run_id, rate=rate)
        flow = CommandFlow(client=operator) if COMMANDS else None
        probe = Probe(load=load, conn=conn, unit_id=f"{prefix}PROBE")
        injector = make_injector(stack, probe, 2.0 if short else 10.0, flow)
        stop, watching = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(load.run(stop))]
        if flow is not None:
            await observer.start()
            tasks.append(asyncio.create_task(flow.run(stop)))
        watchdog = asyncio.create_task(stack.watch(watching))
        try:
            fault_started = time.monotonic()
            await injector.run(plan, gap_s=1.0 if short else duration_s / (len(plan) + 1) / 2)
            await asyncio.sleep(max(2.0, duration_s - (time.monotonic() - fault_started)))
            stop.set()
            await asyncio.gather(*tasks)
            load_s = time.monotonic() - fault_started
            verdict = await _drain(conn, ledger, prefix, timeout_s=60)
            tally = await _dead_letter_tally(stack, injector.planted)
            commands = None
            if flow is not None:
                views = await flow.final_views(timeout_s=60)
                await asyncio.sleep(1)  # answers published just before the last status change
                commands = judge(issued=len(flow.issued), views=views, answers=observer.answers)
                await observer.close()
        finally:
            for task in tasks:
                task.cancel()
            watching.set()
            await watchdog
    controls = await negative_control(conn=conn, ledger=ledger, id_prefix=prefix)
    landed = await compare_retried(conn, ledger, prefix)
    return Outcome(
        ledger=ledger,
        verdict=verdict,
        faults=injector.faults,
        planted=len(injector.planted),
        dead_letters=tally,
        controls=controls,
        retried_landed=landed,
        commands=commands,
        elapsed_s=time.monotonic() - started,
        load_s=load_s,
        crashes=stack.crashes,
        logs=stack.log_paths(),
    )


async def compare_retried(conn: asyncpg.Connection, ledger: Ledger, prefix: str) -> int:
    """How many readings that were refused at first are stored with their values."""
    retried = Ledger(acked={key: ledger.acked[key] for key in ledger.retried_keys})
    return (await compare(conn=conn, ledger=retried, id_prefix=prefix)).stored
