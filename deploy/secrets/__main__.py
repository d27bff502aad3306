"""`python -m deploy.secrets generate|show`: the compose stack's passwords and keys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.secrets.store import SECRETS_DIR, ensure, read

SHOWN = """\
Device key (posts telemetry to http://localhost:8000, header X-API-Key):
  DEVICE_API_KEY={device}
Operator key (control API http://localhost:8001, monitoring API and console http://localhost:8002):
  OPERATOR_API_KEY={operator}
RabbitMQ management (http://localhost:15672): user admin
  RABBITMQ_ADMIN_PASSWORD={admin}
"""


def main() -> None:
    """Parse the command line; generate what is missing; optionally print the keys."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy.secrets",
        description=(
            "The compose stack's secrets, one file per variable (POSTGRES_PASSWORD_FILE, "
            "AMQP_PASSWORD_FILE, DEVICE_API_KEYS_FILE, ...). Existing files are kept; a value "
            "set in this command's environment replaces its file."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("generate", help="create every missing secret (does nothing if present)")
    commands.add_parser("show", help="print the device and operator keys and the broker login")
    parser.add_argument("--dir", type=Path, default=SECRETS_DIR, help="the secrets directory")
    args = parser.parse_args()
    try:
        written = ensure(args.dir)
        if args.command == "show":
            print(
                SHOWN.format(
                    device=read(args.dir, "DEVICE_API_KEY"),
                    operator=read(args.dir, "OPERATOR_API_KEY"),
                    admin=read(args.dir, "RABBITMQ_ADMIN_PASSWORD"),
                ),
                end="",
            )
        elif written:
            print(f"wrote {len(written)} secrets in {args.dir}: {', '.join(written)}")
        else:
            print(f"every secret is already in {args.dir}; nothing written")
    except OSError as error:
        print(f"deploy.secrets: {error.strerror or error}: {error.filename}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
