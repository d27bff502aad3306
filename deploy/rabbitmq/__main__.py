"""`python -m deploy.rabbitmq render --out PATH`: write the broker's definitions with hashes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.rabbitmq.definitions import (
    TEMPLATE,
    PasswordError,
    load_template,
    passwords_from_env,
    render,
    user_names,
    write_definitions,
)


def main() -> None:
    """Parse the command line, read the passwords from the environment, write the file."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy.rabbitmq",
        description=(
            "RabbitMQ definitions for docker compose: the committed template with a salted "
            "hash of each user's password (RABBITMQ_<USER>_PASSWORD from the environment)."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("render", help="write the definitions file the broker imports")
    command.add_argument("--out", type=Path, required=True, help="where to write the file")
    command.add_argument("--template", type=Path, default=TEMPLATE, help="definitions template")
    args = parser.parse_args()
    template = load_template(args.template)
    try:
        passwords = passwords_from_env(template)
    except PasswordError as error:
        print(f"deploy.rabbitmq: invalid configuration: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    write_definitions(render(template, passwords), args.out)
    print(f"wrote {args.out} for users: {', '.join(user_names(template))}")


if __name__ == "__main__":
    main()
