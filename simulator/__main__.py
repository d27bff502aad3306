"""`python -m simulator`: play a Megapack and EV fleet; send its telemetry; obey commands.

Interface (kept stable; other services' tests rely on it). Every variable is also a flag:

  MEGAPACK_COUNT (10)   --megapack-count    Megapacks MP-0001.., spread over the sites
  EV_COUNT (10)         --ev-count          vehicles EV-0001.., spread over the fleets
  SITE_COUNT (2)        --site-count        sites SITE-01..
  FLEET_COUNT (1)       --fleet-count       EV fleets FLEET-01..
  TELEMETRY_INTERVAL_S (1.0) --telemetry-interval-s   one reading per unit per interval
  SIM_DURATION_S (0)    --sim-duration-s    stop after this long (steps = duration / interval)
  SIM_SEED (random)     --sim-seed          same seed and clock give the same readings
  FAULT_RATE (0.5)      --fault-rate        random faults per unit-hour; 0 = none at all
  GATEWAY_URL (http://localhost:8000) --gateway-url
  DEVICE_API_KEY        --device-api-key    sent as X-API-Key
  TELEMETRY_FORMAT (json) --telemetry-format  json | protobuf   (also --format)
  AMQP_URL, AMQP_PREFIX                     the broker of the unit agent
  SIM_AGENT_ID (sim)    --sim-agent-id      consumes queue `<prefix>agent.<id>`
  SIM_AGENT (true)      --no-agent          telemetry only, no command agent
  SIM_AGENT_JOURNAL     --sim-agent-journal the agent's answers, kept across restarts so a
                                            redelivered command is never run twice
                                            (default var/agent-<AMQP_PREFIX><SIM_AGENT_ID>.journal)
  SIM_FAULTED_UNITS     --sim-faulted-units MP-0001,MP-0003 start in FAULT (INVERTER_FAULT)
                                            and stay there until reset_fault
  SIM_ID_PREFIX ("")    --sim-id-prefix     prepended to unit and vehicle ids (tests sharing
                                            one database: t1-MP-0001)
  SIM_START (unset)     --sim-start         RFC 3339 instant in the past: replay from there
                                            with historical timestamps until now, then go on
                                            in real time (within RETENTION_DAYS, 30)
  SIM_SPEED (1)         --sim-speed         replay at N x real time (needs SIM_START); the
                                            replay waits for the sender, never drops
  SIM_RAMP_PERCENT_PER_S (10) --sim-ramp-percent-per-s   power change per s, % of rated
  SIM_AUX_KW (3)        --sim-aux-kw        auxiliaries' base draw with the PCS off
  SIM_NOISE_PERCENT (0.1) --sim-noise-percent  regulation noise (sigma), % of rated power
  SIM_VARIATION (1)     --sim-variation     scale of the per-unit spreads (0 = all nameplate)

The unit agent binds `<kind>.<unit_id>` of every unit to its quorum queue on the `commands`
exchange and answers on `command_acks` (ACKNOWLEDGED, then COMPLETED or FAILED; REJECTED
with a reason, "expired" for an expired command). When the broker is unreachable the
simulation goes on and the agent connects in the background. SIGINT/SIGTERM stop cleanly
with a final summary line (`sim_summary`); a stats line (`sim_stats`) comes every 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import time

import httpx
import structlog
from aio_pika.abc import AbstractChannel

from common.broker import Broker
from common.logging import configure_logging
from common.settings import load_settings
from common.topology import Names
from simulator.agent import REMEMBERED_COMMANDS, UnitAgent
from simulator.agent_amqp import AgentTransport
from simulator.clock import Pace, WallClock
from simulator.fleet import Fleet
from simulator.journal import AnswerJournal
from simulator.runner import simulate
from simulator.sender import Sender
from simulator.settings import SimulatorSettings
from simulator.stats import Stats

log = structlog.get_logger("simulator")
CLOSE_TIMEOUT_S = 2.0
FLAGS = (
    ("megapack_count", int), ("ev_count", int), ("site_count", int), ("fleet_count", int),
    ("telemetry_interval_s", float), ("sim_duration_s", float), ("sim_seed", int),
    ("fault_rate", float), ("gateway_url", str), ("device_api_key", str),
    ("telemetry_format", str), ("sim_agent_id", str), ("sim_faulted_units", str),
    ("sim_id_prefix", str), ("sim_agent_journal", str),
    ("max_batch_readings", int), ("buffer_intervals", int), ("stats_interval_s", float),
    ("sim_start", str), ("sim_speed", float), ("sim_ramp_percent_per_s", float),
    ("sim_aux_kw", float), ("sim_noise_percent", float), ("sim_variation", float),
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> dict[str, str]:
    """The environment variables the given flags override."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Simulate Megapacks and EVs: telemetry to the gateway, commands obeyed.",
    )
    for name, kind in FLAGS:
        flag = "--" + name.replace("_", "-")
        aliases = (flag, "--format") if name == "telemetry_format" else (flag,)
        parser.add_argument(*aliases, dest=name, type=kind, help=f"overrides {name.upper()}")
    parser.add_argument("--no-agent", action="store_true", help="do not consume commands")
    args = vars(parser.parse_args(argv))
    overrides = {name.upper(): str(args[name]) for name, _ in FLAGS if args[name] is not None}
    if args["no_agent"]:
        overrides["SIM_AGENT"] = "false"
    return overrides


async def run(settings: SimulatorSettings) -> None:
    """Wire the fleet, the sender and the agent; run until stopped or the duration is over."""
    seed = settings.sim_seed if settings.sim_seed is not None else random.randrange(2**32)
    fleet = Fleet(
        megapack_count=settings.megapack_count,
        ev_count=settings.ev_count,
        site_count=settings.site_count,
        fleet_count=settings.fleet_count,
        seed=seed,
        fault_rate_per_h=settings.fault_rate,
        faulted_units=settings.sim_faulted_units,
        id_prefix=settings.sim_id_prefix,
        physics=settings.physics(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if settings.device_api_key is None:
        log.warning("no_device_api_key", hint="set DEVICE_API_KEY; the gateway will answer 401")
    headers = {"X-API-Key": settings.device_api_key or ""}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    stats = Stats()
    clock = WallClock()
    units = settings.megapack_count + settings.ev_count
    interval_s = settings.telemetry_interval_s
    pace = Pace(interval_s=interval_s, wall=clock, start_ms=settings.sim_start,
                speed=settings.sim_speed)  # fmt: skip
    buffer_readings = max(units, 1) * settings.buffer_intervals
    backlog = 2 * settings.max_batch_readings  # a replay keeps full requests going
    if pace.replaying:  # the replay waits below `backlog`: no stream's buffer can overflow
        buffer_readings = max(buffer_readings, backlog + units)
    agent = await start_agent(settings, fleet=fleet, clock=clock) if settings.sim_agent else None
    transport = agent[1] if agent else None
    log.info(
        "sim_started",
        seed=seed,
        megapacks=settings.megapack_count,
        evs=settings.ev_count,
        sites=settings.site_count,
        interval_s=interval_s,
        replay_from=settings.sim_start,
        replay_speed=settings.sim_speed,
        gateway=settings.gateway_url,
        agent=settings.sim_agent_id if transport else None,
    )
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=settings.gateway_url, headers=headers, timeout=10.0, limits=limits
    ) as client:
        sender = Sender(
            client=client,
            stats=stats,
            telemetry_format=settings.telemetry_format,
            max_batch=settings.max_batch_readings,
            buffer_readings=buffer_readings,
        )
        steps = await simulate(
            fleet=fleet,
            outlet=sender,
            stats=stats,
            clock=clock,
            stop=stop,
            interval_s=interval_s,
            duration_s=settings.sim_duration_s,
            stats_interval_s=settings.stats_interval_s,
            agent=transport,
            pace=pace,
            backlog_readings=backlog,
        )
        await sender.drain(timeout_s=10.0)
    elapsed = time.monotonic() - started
    log.info("sim_summary", steps=steps, **stats.summary(elapsed_s=elapsed, buffered=0))
    if agent is not None:
        agent[2].cancel()
        with contextlib.suppress(TimeoutError):  # a busy broker must not hold the exit
            await asyncio.wait_for(agent[0].close(), CLOSE_TIMEOUT_S)


async def start_agent(
    settings: SimulatorSettings, *, fleet: Fleet, clock: WallClock
) -> tuple[Broker, AgentTransport, asyncio.Task[None]]:
    """Connect (in the background) and consume the commands of the fleet's units."""
    names = Names(settings.amqp_prefix)
    journal = AnswerJournal(settings.agent_journal_path(), remembered=REMEMBERED_COMMANDS)

    async def declare(channel: AbstractChannel, declared: Names) -> None:
        await transport.declare(channel, declared)

    try:
        decider = UnitAgent(fleet=fleet, agent_id=settings.sim_agent_id, journal=journal)
    except OSError as error:
        path = settings.agent_journal_path()
        raise SystemExit(f"simulator: SIM_AGENT_JOURNAL={path}: {error.strerror}") from None
    broker = Broker(settings.amqp_url, names, declare=declare)
    transport = AgentTransport(
        publisher=broker,
        decider=decider,
        names=names,
        agent_id=settings.sim_agent_id,
        unit_keys=fleet.unit_keys(),
        now_ms=clock.now_ms,
    )
    transport.recover(now_ms=clock.now_ms())
    await broker.start()
    return broker, transport, asyncio.create_task(transport.run_outbox(), name="agent-outbox")


def main() -> None:
    """Parse flags, validate settings, simulate."""
    os.environ.update(parse_args())
    settings = load_settings(SimulatorSettings, "simulator")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
