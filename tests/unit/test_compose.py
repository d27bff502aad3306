"""docker-compose.yml is valid and consistent with the code: commands, variables, ports, limits."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from deploy.rabbitmq.definitions import load_template, password_variable, user_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_PATH.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_IMAGE = "megapack-backend:local"
APP = {name: svc for name, svc in SERVICES.items() if svc.get("image") == APP_IMAGE}
NGINX = (ROOT / "deploy/nginx/nginx.conf").read_text()
OPERATIONS = ROOT / "docs/OPERATIONS.md"
REQUIRED_SERVICES = {"timescaledb", "rabbitmq", "migrate", "gateway", "nginx", "ingestion"}
REQUIRED_SERVICES |= {"control", "monitoring", "simulator", "rabbitmq-definitions"}


def _module(service: str) -> tuple[str, tuple[str, ...]]:
    command = APP[service]["command"]
    assert command[:2] == ["python", "-m"], f"{service}: command must be `python -m <module>`"
    return command[2], tuple(arg for arg in command[3:] if not arg.startswith("-"))[:1]


def _settings_classes(module: str) -> list[type[BaseSettings]]:
    """Settings classes any file of the module's package imports or defines."""
    package = ROOT / module.replace(".", "/")
    found: list[type[BaseSettings]] = []
    for path in sorted(package.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        namespace = vars(importlib.import_module(name.removesuffix(".__init__")))
        found += [
            value
            for value in namespace.values()
            if isinstance(value, type) and issubclass(value, BaseSettings)
        ]
    return found


def _variables_read(module: str) -> set[str]:
    """Variables a module reads: its settings classes' fields, or names its source spells out."""
    if module == "deploy.rabbitmq":
        return {password_variable(user) for user in user_names(load_template())}
    fields = {
        (cls.model_config.get("env_prefix") or "") + name.upper()
        for cls in _settings_classes(module)
        for name in cls.model_fields
    }
    package = ROOT / module.replace(".", "/")
    source = "\n".join(path.read_text() for path in package.rglob("*.py"))
    return fields | set(re.findall(r"[\"']([A-Z][A-Z0-9_]{2,})[\"']", source))


def _default(module: str, field: str) -> Any:
    for cls in _settings_classes(module):
        if field in cls.model_fields:
            return cls.model_fields[field].default
    raise AssertionError(f"{module} has no setting {field}")


def _documented_commands() -> set[tuple[str, tuple[str, ...]]]:
    """`python -m module [subcommand]` in the code of the operations and API docs, and Procfile."""
    text = OPERATIONS.read_text() + (ROOT / "docs/API.md").read_text()
    code = re.findall(r"```sh\n(.*?)```", text, re.S)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    code += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose)]
    code.append((ROOT / "Procfile").read_text())
    found = re.findall(r"python -m ([a-z][a-z_.]*)(?: ([a-z][a-z-]+))?", "\n".join(code))
    return {(module, (sub,) if sub else ()) for module, sub in found}


def test_the_stack_has_every_service_with_its_dependencies() -> None:
    assert set(SERVICES) >= REQUIRED_SERVICES
    assert SERVICES["gateway"]["deploy"]["replicas"] == 2
    assert SERVICES["ingestion"]["deploy"]["replicas"] == 2
    assert SERVICES["timescaledb"]["image"].startswith("timescale/timescaledb:2.")
    assert SERVICES["timescaledb"]["image"].endswith("-pg16")
    assert SERVICES["rabbitmq"]["image"].startswith("rabbitmq:3.13")
    assert "15672:15672" in SERVICES["rabbitmq"]["ports"]
    for name in ("timescaledb", "rabbitmq", "gateway", "nginx"):
        assert SERVICES[name]["healthcheck"]["test"], name
    for volume in ("timescaledb-data", "rabbitmq-data"):
        assert volume in COMPOSE["volumes"]
    for name in ("ingestion", "control", "monitoring"):
        waits = SERVICES[name]["depends_on"]
        assert waits["migrate"]["condition"] == "service_completed_successfully", name
        assert waits["rabbitmq"]["condition"] == "service_healthy", name
    assert SERVICES["migrate"]["restart"] == "no"
    definitions = SERVICES["rabbitmq"]["depends_on"]["rabbitmq-definitions"]
    assert definitions["condition"] == "service_completed_successfully"
    for name, service in APP.items():
        assert service.get("init") is True, f"{name}: needs an init that forwards SIGTERM"


# Runs `python -m <module> [sub] --help` for each command in one fresh interpreter (the heavy
# imports are paid once): each must exit 0 and print its usage.
def test_every_variable_compose_sets_is_one_the_code_reads() -> None:
    for name in APP:
        module, _ = _module(name)
        unknown = set(APP[name].get("environment", {})) - _variables_read(module)
        assert not unknown, f"{name} ({module}) is given variables it never reads: {unknown}"
        assert "AMQP_PREFIX" not in APP[name].get("environment", {}), "definitions assume ''"


def test_every_required_variable_comes_from_env_example() -> None:
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_PATH.read_text()))
    assert required, "compose takes its secrets from .env"
    assert required <= example, f"missing from .env.example: {required - example}"
    secrets = {name for name in required if "PASSWORD" in name or name.endswith("KEYS")}
    for line in (ROOT / ".env.example").read_text().splitlines():
        name, _, value = line.partition("=")
        if name in secrets:
            assert "change-me" in value, f"{name} must be a placeholder bin/make-env replaces"


def test_nginx_body_limit_equals_the_gateway_max_body_bytes_default() -> None:
    match = re.search(r"client_max_body_size (\d+)([kKmM]?);", NGINX)
    assert match is not None
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    limit = int(match.group(1)) * scale
    assert limit == _default("api_gateway", "max_body_bytes")
    assert f"body is over the {limit}-byte limit" in NGINX  # the gateway's own 413 message


def test_ports_match_the_services_settings() -> None:
    gateway_port = _default("api_gateway", "gateway_port")
    assert re.search(rf"server gateway:{gateway_port}\b", NGINX)
    listen = re.search(r"listen (\d+);", NGINX)
    assert listen is not None
    assert SERVICES["nginx"]["ports"][0].endswith(f":{listen.group(1)}")
    simulator = APP["simulator"]["environment"]
    assert simulator["GATEWAY_URL"] == f"http://nginx:{listen.group(1)}"
    published = {"control": "control_port", "monitoring": "monitoring_port"}
    for name, field in published.items():
        port = _default(_module(name)[0], field)
        assert f"{port}:{port}" in SERVICES[name]["ports"], name
    probes = {"gateway": "gateway_port", "ingestion": "ingestion_metrics_port", **published}
    for name, field in probes.items():
        probe = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{_default(_module(name)[0], field)}/" in probe, name


@pytest.mark.parametrize("service", ["gateway", "ingestion", "control", "monitoring", "simulator"])
def test_each_service_connects_as_its_own_broker_user(service: str) -> None:
    url = APP[service]["environment"]["AMQP_URL"]
    user = re.match(r"amqp://([a-z]+):\$\{([A-Z_]+)\}@rabbitmq:5672/$", url)
    assert user is not None, url
    assert user.group(1) in user_names(load_template())
    assert user.group(2) == password_variable(user.group(1))
    rendered_from = APP["rabbitmq-definitions"]["environment"]
    assert user.group(2) in rendered_from


def test_make_run_starts_what_compose_starts() -> None:
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    started = {re.findall(r"python -m ([a-z_.]+)", command)[0] for command in procfile.values()}
    long_running = {_module(name)[0] for name, svc in APP.items() if svc["restart"] != "no"}
    assert started == long_running
