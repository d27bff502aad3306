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
from deploy.secrets.store import SECRETS_DIR, groups, path_of

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_PATH.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_IMAGE = "megapack-backend:local"
APP = {name: svc for name, svc in SERVICES.items() if svc.get("image") == APP_IMAGE}
NGINX = (ROOT / "deploy/nginx/nginx.conf").read_text()
OPERATIONS = ROOT / "docs/OPERATIONS.md"
REQUIRED_SERVICES = {"timescaledb", "rabbitmq", "migrate", "gateway", "nginx", "ingestion"}
REQUIRED_SERVICES |= {"control", "monitoring", "simulator", "rabbitmq-definitions", "secrets"}
GENERATED = {variable for group in groups() for variable in group.variables}
ALIASES = {"DATABASE_PASSWORD": "POSTGRES_PASSWORD"}  # a setting read from another's file


def _module(service: str) -> tuple[str, tuple[str, ...]]:
    command = APP[service].get("entrypoint", []) + APP[service]["command"]
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
    if module == "deploy.secrets":
        return GENERATED
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
        given = {variable.removesuffix("_FILE") for variable in APP[name].get("environment", {})}
        unknown = given - _variables_read(module)
        assert not unknown, f"{name} ({module}) is given variables it never reads: {unknown}"
        assert "AMQP_PREFIX" not in APP[name].get("environment", {}), "definitions assume ''"


def test_nothing_must_be_prepared_before_compose_up() -> None:
    text = COMPOSE_PATH.read_text()
    assert not re.findall(r"\$\{[A-Z0-9_]+:\?", text), "no variable may be required"
    assert "name" not in COMPOSE  # Compose v1.29 refuses a top-level `name`
    assert "version" not in COMPOSE
    assert "start_interval" not in text  # Compose v1.29 refuses it
    assert not (ROOT / "Dockerfile").read_text().startswith("# syntax=")  # no front end fetched
    published = [port for svc in SERVICES.values() for port in svc.get("ports", [])]
    assert {str(port).rsplit(":", 1)[0].split("}")[-1] for port in published} >= {"15672", "8001"}
    for port in published:  # the host's own broker and database keep theirs
        assert not re.match(r"^(5672|5432):", str(port)), port


def test_every_secret_is_a_generated_file_no_service_sees_in_its_environment() -> None:
    overridable = SERVICES["secrets"]["environment"]
    assert set(overridable) == GENERATED - {"RABBITMQ_ERLANG_COOKIE"}
    for variable, value in overridable.items():
        assert value == f"${{{variable}:-}}", "a value from the shell or .env wins, if any"
    assert SERVICES["secrets"]["volumes"] == [f"secrets:{SECRETS_DIR}"]
    for name, service in SERVICES.items():
        if name == "secrets":
            continue
        for variable, value in service.get("environment", {}).items():
            secret = re.search(r"PASSWORD|_KEYS?$|COOKIE", variable)
            if variable.endswith("_FILE"):
                target = variable.removesuffix("_FILE")
                target = ALIASES.get(target, target) if target != "AMQP_PASSWORD" else None
                files = {str(path_of(SECRETS_DIR, generated)) for generated in GENERATED}
                assert value in files, f"{name}: {variable} is no generated secret"
                if target is not None:  # AMQP_PASSWORD: the service's own user (test below)
                    assert value == str(path_of(SECRETS_DIR, target)), f"{name}: {variable}"
                assert f"secrets:{SECRETS_DIR}:ro" in service["volumes"], name
            else:
                assert not secret, f"{name}: {variable} must come as a file"
                assert "@" not in str(value) or not re.search(r"//[^/@]*:[^/@]*@", str(value))
    for name in ("timescaledb", "rabbitmq-definitions"):
        waits = SERVICES[name]["depends_on"]["secrets"]
        assert waits["condition"] == "service_completed_successfully", name


def test_nginx_body_limit_equals_the_gateway_max_body_bytes_default() -> None:
    match = re.search(r"client_max_body_size (\d+)([kKmM]?);", NGINX)
    assert match is not None
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    limit = int(match.group(1)) * scale
    assert limit == _default("api_gateway", "max_body_bytes")
    assert f"body is over the {limit}-byte limit" in NGINX  # the gateway's own 413 message


def test_ports_match_the_services_settings() -> None:
    gateway_port = _default("api_gateway", "gateway_port")
    assert re.search(rf"http://gateway:{gateway_port};", NGINX)
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
    environment = APP[service]["environment"]
    nodes = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")  # the cluster profile's nodes, in order
    user = re.match(r"amqp://([a-z]+)@rabbitmq:5672/,", environment["AMQP_URL"])
    assert user is not None, environment["AMQP_URL"]
    expected = ",".join(f"amqp://{user.group(1)}@{node}:5672/" for node in nodes)
    assert environment["AMQP_URL"] == expected  # every node: the first that answers is used
    assert user.group(1) in user_names(load_template())
    variable = password_variable(user.group(1))
    assert environment["AMQP_PASSWORD_FILE"] == str(path_of(SECRETS_DIR, variable))
    rendered_from = APP["rabbitmq-definitions"]["environment"]
    assert rendered_from[variable + "_FILE"] == environment["AMQP_PASSWORD_FILE"]


def test_make_run_starts_what_compose_starts() -> None:
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    started = {re.findall(r"python -m ([a-z_.]+)", command)[0] for command in procfile.values()}
    long_running = {_module(name)[0] for name, svc in APP.items() if svc["restart"] != "no"}
    assert started == long_running


def test_the_cluster_profile_runs_three_nodes_that_find_each_other() -> None:
    nodes = ["rabbitmq", "rabbitmq-2", "rabbitmq-3"]
    config = (ROOT / "deploy/rabbitmq/cluster.conf").read_text()
    assert "cluster_formation.peer_discovery_backend = classic_config" in config
    listed = re.findall(
        r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$", config, re.M
    )
    assert listed == [SERVICES[node]["hostname"] for node in nodes]
    data = set()
    for node in nodes:
        service = SERVICES[node]
        assert service.get("profiles", []) == ([] if node == "rabbitmq" else ["cluster"])
        assert service["image"] == SERVICES["rabbitmq"]["image"]
        assert "rabbitmq_erlang_cookie" in " ".join(service["entrypoint"])  # one cookie for all
        assert f"secrets:{SECRETS_DIR}:ro" in service["volumes"]
        data.add(next(v for v in service["volumes"] if v.endswith(":/var/lib/rabbitmq")))
        if node != "rabbitmq":
            assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
            assert not service["ports"], "only the first node publishes the management UI"
            assert any(v.endswith("/conf.d/30-cluster.conf:ro") for v in service["volumes"])
    assert len(data) == 3, "each node has a data volume of its own"


def test_every_node_heals_a_partition_the_same_way() -> None:
    config = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    assert re.search(r"^cluster_partition_handling = autoheal$", config, re.M)
    advanced = (ROOT / "deploy/rabbitmq/advanced.config").read_text()
    assert "{autoheal_state_transition_timeout, 15000}" in advanced
    for node in ("rabbitmq", "rabbitmq-2", "rabbitmq-3"):
        volumes = SERVICES[node]["volumes"]
        assert "./deploy/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-megapack.conf:ro" in volumes
        assert "./deploy/rabbitmq/advanced.config:/etc/rabbitmq/advanced.config:ro" in volumes
