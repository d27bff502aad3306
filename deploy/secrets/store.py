"""Generate every password and key of the compose stack into one directory, once.

Each secret is a file named after the variable it fills (`postgres_password` is what
`POSTGRES_PASSWORD_FILE` points at). A file that exists is kept: running again changes nothing,
so the stack's second boot finds the secrets of its first. A value given in the environment of
the `secrets` service (from the shell or `.env`) replaces the file's.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.rabbitmq.definitions import load_template, password_variable, user_names

SECRETS_DIR = Path("/run/secrets/megapack")
DEVICE_KEY_NAME = "sim"
OPERATOR_KEY_NAME = "ops"


@dataclass(frozen=True)
class Group:
    """Files written together: a key list and the one key a client uses share one secret."""

    variables: tuple[str, ...]

    def values(self, token: str) -> dict[str, str]:
        """The files' contents for a fresh `token`."""
        first = self.variables[0]
        if first == "DEVICE_API_KEYS":
            return {first: f"{DEVICE_KEY_NAME}:{token}", "DEVICE_API_KEY": token}
        if first == "OPERATOR_API_KEYS":
            return {first: f"{OPERATOR_KEY_NAME}:{token}", "OPERATOR_API_KEY": token}
        return {first: token}


def groups() -> list[Group]:
    """Every secret of the stack."""
    found = [
        Group(("DEVICE_API_KEYS", "DEVICE_API_KEY")),
        Group(("OPERATOR_API_KEYS", "OPERATOR_API_KEY")),
        Group(("POSTGRES_PASSWORD",)),
        Group(("RABBITMQ_ERLANG_COOKIE",)),  # the cluster profile's nodes share it
    ]
    found += [Group((password_variable(user),)) for user in user_names(load_template())]
    return found


def path_of(directory: Path, variable: str) -> Path:
    """Where a variable's secret lives."""
    return directory / variable.lower()


def _write(path: Path, value: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
    os.replace(partial, path)


def ensure(directory: Path, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Create what is missing (or overridden by `environ`); the variables written, in order."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for group in groups():
        given = {name: environ[name] for name in group.variables if environ.get(name)}
        missing = [name for name in group.variables if not path_of(directory, name).is_file()]
        values = group.values(secrets.token_urlsafe(24)) if missing else {}
        values.update(given)  # an explicit value wins; the rest of a fresh group stays fresh
        for name, value in values.items():
            path = path_of(directory, name)
            if name in given and path.is_file() and path.read_text().rstrip("\n") == value:
                continue
            _write(path, value)
            written.append(name)
    return written


def read(directory: Path, variable: str) -> str:
    """One secret's value."""
    return path_of(directory, variable).read_text().rstrip("\n")
