"""Render RabbitMQ definitions: the committed template plus a salted hash of each user's password.

The template (`definitions.json` beside this file) holds the users, their permissions and the
topology, but no secret. Passwords come from the environment (`RABBITMQ_<USER>_PASSWORD`) or
from the file `RABBITMQ_<USER>_PASSWORD_FILE` names (compose: the `secrets` volume); only their
salted SHA-256 hashes reach the rendered file, which the broker imports on every boot
(`load_definitions`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_settings import SettingsError

from common.settings import env_or_file

TEMPLATE = Path(__file__).with_name("definitions.json")
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
PLACEHOLDER = "change-me"
MIN_PASSWORD_CHARS = 12


class PasswordError(ValueError):
    """A user's password is missing or unusable; the message names the variable."""


def password_variable(user: str) -> str:
    """The environment variable holding a user's password."""
    return f"RABBITMQ_{user.upper()}_PASSWORD"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The committed definitions template."""
    template: dict[str, Any] = json.loads(path.read_text())
    return template


def user_names(template: Mapping[str, Any]) -> list[str]:
    """Every user the template defines."""
    return [str(user["name"]) for user in template["users"]]


def passwords_from_env(
    template: Mapping[str, Any], environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """Each template user's password from the environment or its `_FILE`; PasswordError if bad."""
    passwords: dict[str, str] = {}
    for user in user_names(template):
        variable = password_variable(user)
        try:
            value = env_or_file(variable, environ) or ""
        except SettingsError as error:
            raise PasswordError(str(error)) from None
        if not value:
            raise PasswordError(f"{variable} is required but not set")
        if value.startswith(PLACEHOLDER):
            raise PasswordError(f"{variable} is still the placeholder; run bin/make-env")
        if len(value) < MIN_PASSWORD_CHARS:
            raise PasswordError(f"{variable} must be at least {MIN_PASSWORD_CHARS} characters")
        passwords[user] = value
    return passwords


def render(
    template: Mapping[str, Any],
    passwords: Mapping[str, str],
    *,
    vhost: str = "/",
    user_prefix: str = "",
) -> dict[str, Any]:
    """The importable definitions; `vhost` and `user_prefix` let tests use throwaway names."""
    rendered = copy.deepcopy(dict(template))
    for user in rendered["users"]:
        name = user["name"]
        if name not in passwords:
            raise PasswordError(f"{password_variable(name)} is required but not set")
        user["password_hash"] = hash_password(passwords[name])
        user["hashing_algorithm"] = HASHING_ALGORITHM
        user["name"] = user_prefix + name
    for permission in rendered["permissions"]:
        permission["user"] = user_prefix + permission["user"]
    rendered["vhosts"] = [{"name": vhost}]
    for section in ("permissions", "exchanges", "queues", "bindings", "policies"):
        for item in rendered.get(section, []):
            item["vhost"] = vhost
    return rendered


def write_definitions(definitions: Mapping[str, Any], path: Path) -> None:
    """Write atomically, readable by the broker's user (the file holds hashes, not secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(definitions, indent=2) + "\n")
    partial.chmod(0o644)
    os.replace(partial, path)
