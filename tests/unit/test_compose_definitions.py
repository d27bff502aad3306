"""deploy/rabbitmq: the definitions match the topology code and never carry a secret."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractChannel

from common.topology import Names, declare_all
from deploy.rabbitmq.definitions import (
    PasswordError,
    hash_password,
    load_template,
    password_variable,
    passwords_from_env,
    render,
    user_names,
)

TEMPLATE = load_template()


@dataclass
class FakeExchange:
    name: str


@dataclass
class FakeQueue:
    name: str
    channel: FakeChannel

    async def bind(self, exchange: FakeExchange, routing_key: str) -> None:
        self.channel.bindings.add((exchange.name, self.name, routing_key))


@dataclass
class FakeChannel:
    """Records what the topology code declares."""

    exchanges: dict[str, str] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    bindings: set[tuple[str, str, str]] = field(default_factory=set)

    async def declare_exchange(self, name: str, kind: Any, durable: bool) -> FakeExchange:
        assert durable
        self.exchanges[name] = str(kind.value)
        return FakeExchange(name)

    async def declare_queue(self, name: str, durable: bool, arguments: dict[str, Any]) -> FakeQueue:
        assert durable
        self.queues[name] = dict(arguments)
        return FakeQueue(name, self)


async def test_definitions_declare_exactly_what_the_topology_code_declares() -> None:
    channel = FakeChannel()
    await declare_all(cast(AbstractChannel, channel), Names(""))
    exchanges = {item["name"]: item["type"] for item in TEMPLATE["exchanges"]}
    assert exchanges == channel.exchanges
    assert all(item["durable"] for item in TEMPLATE["exchanges"] + TEMPLATE["queues"])
    queues = {item["name"]: item["arguments"] for item in TEMPLATE["queues"]}
    assert queues == channel.queues  # same arguments, or the services' declares would fail
    bindings = {
        (item["source"], item["destination"], item["routing_key"]) for item in TEMPLATE["bindings"]
    }
    assert bindings == channel.bindings


def test_every_permission_is_anchored_and_every_user_has_one() -> None:
    users = set(user_names(TEMPLATE))
    assert {permission["user"] for permission in TEMPLATE["permissions"]} == users
    for permission in TEMPLATE["permissions"]:
        for verb in ("configure", "write", "read"):
            pattern = permission[verb]
            re.compile(pattern)
            # unanchored, `telemetry` would also match `ingest.telemetry`
            assert pattern == ".*" or (pattern.startswith("^") and pattern.endswith("$"))
    administrators = [user["name"] for user in TEMPLATE["users"] if user["tags"]]
    assert administrators == ["admin"]


def _permission(user: str, verb: str) -> re.Pattern[str]:
    (found,) = [p[verb] for p in TEMPLATE["permissions"] if p["user"] == user]
    return re.compile(found)


@pytest.mark.parametrize(
    ("user", "verb", "name", "allowed"),
    [
        ("gateway", "write", "telemetry", True),
        ("gateway", "read", "ingest.telemetry", False),
        ("gateway", "configure", "ingest.telemetry", False),
        ("gateway", "write", "commands", False),
        ("ingestion", "read", "ingest.telemetry", True),
        ("ingestion", "write", "commands", False),
        ("ingestion", "read", "control.acks", False),
        ("control", "write", "commands", True),
        ("control", "read", "control.acks", True),
        ("control", "read", "agent.sim-1", False),
        ("simulator", "read", "agent.sim-1", True),
        ("simulator", "write", "command_acks", True),
        ("simulator", "write", "commands", False),
        ("monitoring", "write", "alerts", True),
        ("monitoring", "read", "alerts.notify", True),
        ("monitoring", "configure", "alerts.notify", True),
        ("monitoring", "write", "telemetry", False),
        ("monitoring", "read", "ingest.telemetry", False),
    ],
)
def test_least_privilege_regexes(user: str, verb: str, name: str, allowed: bool) -> None:
    assert bool(_permission(user, verb).fullmatch(name)) is allowed


def test_rendered_definitions_hold_salted_hashes_not_passwords() -> None:
    passwords = {
        user: f"{user}-secret-{index:04d}" for index, user in enumerate(user_names(TEMPLATE))
    }
    rendered = render(TEMPLATE, passwords, vhost="v-test", user_prefix="t-")
    text = json.dumps(rendered)
    assert not any(password in text for password in passwords.values())
    assert "password_hash" not in json.dumps(TEMPLATE)  # nothing secret is committed
    for user in rendered["users"]:
        raw = base64.b64decode(user["password_hash"])
        salt, digest = raw[:4], raw[4:]
        password = passwords[user["name"].removeprefix("t-")]
        assert digest == hashlib.sha256(salt + password.encode()).digest()
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert {p["user"] for p in rendered["permissions"]} == {u["name"] for u in rendered["users"]}
    sections = ("permissions", "exchanges", "queues", "bindings")
    assert {item["vhost"] for section in sections for item in rendered[section]} == {"v-test"}
    assert rendered["vhosts"] == [{"name": "v-test"}]


def test_hashes_are_salted() -> None:
    assert hash_password("same-password") != hash_password("same-password")
    fixed = hash_password("same-password", salt=b"\x90\x8d\xc6\x0a")
    assert base64.b64decode(fixed)[:4] == b"\x90\x8d\xc6\x0a"


def test_passwords_come_from_the_environment_and_placeholders_are_refused() -> None:
    env = {password_variable(user): f"{user}-long-secret" for user in user_names(TEMPLATE)}
    assert passwords_from_env(TEMPLATE, env)["gateway"] == "gateway-long-secret"
    with pytest.raises(PasswordError, match="RABBITMQ_GATEWAY_PASSWORD is required"):
        passwords_from_env(TEMPLATE, {**env, "RABBITMQ_GATEWAY_PASSWORD": ""})
    with pytest.raises(PasswordError, match="RABBITMQ_CONTROL_PASSWORD is still the placeholder"):
        passwords_from_env(TEMPLATE, {**env, "RABBITMQ_CONTROL_PASSWORD": "change-me-control"})
    with pytest.raises(PasswordError, match="at least 12"):
        passwords_from_env(TEMPLATE, {**env, "RABBITMQ_ADMIN_PASSWORD": "short"})
