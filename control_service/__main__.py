"""`python -m control_service [serve | send | status | list]`."""

from __future__ import annotations

import argparse
import sys

from common.http import serve
from common.logging import configure_logging
from common.settings import load_settings
from control_service.app import create_app
from control_service.cli import Client, CliError, run
from control_service.model import STATUSES
from control_service.rules import COMMAND_TYPES, MEGAPACK_MODES
from control_service.settings import ClientSettings, ControlSettings

PROG = "python -m control_service"
CLIENT_ENV = "Client settings: CONTROL_URL (default http://localhost:8001), OPERATOR_API_KEY."


def parser() -> argparse.ArgumentParser:
    """The command line of the service and of its client."""
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Operator commands to Megapacks and EVs. Without a command, serves the API "
        "(settings from the environment; see README).",
    )
    commands = top.add_subparsers(dest="command", metavar="{serve,send,status,list}")
    serve_command = commands.add_parser("serve", help="serve the control API (the default)")
    serve_command.add_argument(
        "--port", type=int, help="listen port (default CONTROL_PORT or 8001)"
    )
    serve_command.add_argument("--host", default="0.0.0.0", help="listen address")

    send = commands.add_parser(
        "send",
        help="send a command to a unit, or to every unit of a site, a fleet or a list",
        description=f"Send a command to a unit, or (with --site, --fleet or --units) one "
        f"command to each unit of a group. {CLIENT_ENV}",
        epilog=f"examples:\n  {PROG} send MP-0001 set_power --power-kw -500\n"
        f"  {PROG} send MP-0001 set_mode --mode DISCHARGING --wait\n"
        f"  {PROG} send EV-0001 set_charge_limit --limit-percent 80\n"
        f"  {PROG} send --site SITE-01 set_mode --mode STANDBY --wait\n"
        f"  {PROG} send --units MP-0001,MP-0002 set_power --power-kw 500 --hold-s 60\n"
        f"  {PROG} send MP-0001 set_mode --mode IDLE --not-before 2026-12-01T18:00:00Z",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument("unit_id", nargs="?", help="e.g. MP-0001 or EV-0001 (not with a group)")
    send.add_argument("type", choices=list(COMMAND_TYPES), help="the command type")
    send.add_argument("--mode", choices=MEGAPACK_MODES, help="set_mode: the mode to enter")
    send.add_argument("--power-kw", type=float, help="set_power: kW, positive discharges")
    send.add_argument("--min-percent", type=float, help="set_soc_limits: lowest SOC")
    send.add_argument("--max-percent", type=float, help="set_soc_limits: highest SOC")
    send.add_argument("--limit-percent", type=float, help="set_charge_limit: 50-100")
    send.add_argument("--params", help="params as a JSON object (options above win)")
    send.add_argument("--ttl-s", type=int, help="seconds the unit has to receive it")
    send.add_argument("--idempotency-key", help="retrying with the same key never sends twice")
    send.add_argument(
        "--hold-s", type=int, help="set_power/set_mode: keep it this long (0: until changed)"
    )
    send.add_argument("--not-before", help="RFC 3339 time: scheduled until then")
    group = send.add_mutually_exclusive_group()
    group.add_argument("--site", help="every Megapack of this site")
    group.add_argument("--fleet", help="every vehicle of this fleet")
    group.add_argument("--units", help="these units, comma-separated")

    status = commands.add_parser(
        "status", help="show a command's status", description=f"Show a command. {CLIENT_ENV}"
    )
    status.add_argument("command_id")

    listing = commands.add_parser(
        "list", help="list a unit's latest commands", description=f"{CLIENT_ENV}"
    )
    listing.add_argument("unit_id")
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--status", choices=STATUSES, help="only commands in this status")
    listing.add_argument("--json", action="store_true", help="print the JSON answer")

    for sub in (send, status):
        sub.add_argument("--wait", action="store_true", help="wait for a final status")
        sub.add_argument("--timeout-s", type=float, default=60.0, help="how long --wait waits")
        sub.add_argument("--json", action="store_true", help="print the JSON answer")
    return top


def main() -> None:
    """Parse the command line and run it."""
    args = parser().parse_args()
    if args.command in (None, "serve"):
        settings = load_settings(ControlSettings, "control_service")
        configure_logging(level=settings.log_level, fmt=settings.log_format)
        serve(
            create_app(settings),
            host=getattr(args, "host", "0.0.0.0"),
            port=getattr(args, "port", None) or settings.control_port,
        )
        return
    client_settings = load_settings(ClientSettings, "control_service")
    try:
        code = run(args, Client(client_settings))
    except CliError as error:
        print(f"control_service: {error}", file=sys.stderr)
        code = error.code
    raise SystemExit(code)


if __name__ == "__main__":
    main()
