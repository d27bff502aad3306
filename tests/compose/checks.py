"""The checks of the compose run, each raising Failure with what it saw."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.compose.engine import Failure, Project, run
from tests.compose.ledger import Ledger

ONE_SHOTS = ("secrets", "rabbitmq-definitions", "migrate")
CONTROL = "http://127.0.0.1:8001"
MONITORING = "http://127.0.0.1:8002"
MANAGEMENT = "http://127.0.0.1:15672"
FINAL = {"completed", "rejected", "failed", "expired"}


@dataclass
class Context:
    """What the checks learn and share."""

    project: Project
    secrets: dict[str, str] = field(default_factory=dict)
    ledger: Ledger | None = None


def wait_for(
    what: str, probe: Callable[[], object], timeout_s: float, every_s: float = 1
) -> object:
    """Poll `probe` until it returns something truthy; Failure naming `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (httpx.HTTPError, Failure) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(every_s)
    raise Failure(f"{what}: not within {timeout_s:.0f} s (last seen: {last!r})"[:2000])


def states(project: Project) -> dict[str, tuple[str, str, int]]:
    """Container name -> (status, health, exit code)."""
    found = {}
    template = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} "
    for name in project.containers():
        out = run(["docker", "inspect", "--format", template + "{{.State.ExitCode}}", name])
        status, health, code = out.stdout.split()
        found[name] = (status, health, int(code))
    return found


def service_of(project: Project, container: str) -> str:
    """The compose service a container belongs to."""
    return re.sub(rf"^{re.escape(project.name)}[_-]|[_-]\d+$", "", container)


def every_service_healthy(ctx: Context) -> str:
    """Long-running services up (and healthy where they have a check); one-shots exited 0."""
    project = ctx.project
    expected = project.services()

    def settled() -> bool:
        seen = states(project)
        services = {service_of(project, name) for name in seen}
        if services != expected:
            return False
        for name, (status, health, code) in seen.items():
            if service_of(project, name) in ONE_SHOTS:
                if status == "exited" and code != 0:
                    raise Failure(f"{name} exited {code}")
                if status != "exited":
                    return False
            elif status != "running" or health not in ("healthy", "-"):
                return False
        return True

    wait_for("every service healthy", settled, timeout_s=300, every_s=2)
    return f"{len(project.containers())} containers"


def secrets_show(ctx: Context) -> str:
    """`docker-compose run --rm secrets show` prints the keys; the files hold all the rest."""
    shown = ctx.project("run", "--rm", "-T", "secrets", "show").stdout
    ctx.secrets = dict(re.findall(r"^\s+([A-Z_]+)=(\S+)$", shown, re.M))
    for name in ("DEVICE_API_KEY", "OPERATOR_API_KEY", "RABBITMQ_ADMIN_PASSWORD"):
        if len(ctx.secrets.get(name, "")) < 24:
            raise Failure(f"`secrets show` printed no {name}:\n{shown}")
    return "device, operator and admin keys printed"


def no_secret_in_inspect(ctx: Context) -> str:
    """No generated secret appears in `docker inspect` of any container of the stack."""
    gateway = ctx.project.container("gateway")
    listing = (
        "import pathlib; [print(p.read_text().strip()) for p in "
        "pathlib.Path('/run/secrets/megapack').iterdir() if not p.name.startswith('.')]"
    )
    values = run(["docker", "exec", gateway, "python", "-c", listing]).stdout.split()
    values = [value.split(":", 1)[-1] for value in values]  # `sim:SECRET` lists: the secret
    if len(values) < 10:
        raise Failure(f"the secrets volume holds only {len(values)} secrets")
    for name in ctx.project.containers():
        inspected = run(["docker", "inspect", name]).stdout
        leaked = [value[:4] + "..." for value in values if value in inspected]
        if leaked:
            raise Failure(f"docker inspect {name} shows secrets: {leaked}")
    return f"{len(values)} secrets, none in {len(ctx.project.containers())} containers' inspect"


def psql(ctx: Context, sql: str, **variables: str) -> str:
    """One query in the stack's database (its own socket); `:'name'` takes a variable."""
    database = ctx.project.container("timescaledb")
    command = ["docker", "exec", "-i", database, "psql", "-U", "postgres", "-d", "megapack"]
    command += ["-At", "-v", "ON_ERROR_STOP=1"]
    command += [f"--set={name}={value}" for name, value in variables.items()]
    return run(command, timeout_s=60, stdin_text=sql + "\n").stdout.strip()


def stored(ctx: Context) -> set[tuple[str, int]]:
    """(unit, epoch ms) of every row the ledger's units have in the database."""
    assert ctx.ledger is not None
    rows = psql(
        ctx,
        "SELECT unit_id || ' ' || (extract(epoch FROM time) * 1000)::bigint FROM "
        "megapack_telemetry WHERE unit_id LIKE :'units'",
        units=f"{ctx.ledger.prefix}-%",
    )
    return {(unit, int(ms)) for unit, ms in (line.split() for line in rows.splitlines())}


def all_acknowledged_stored(ctx: Context, timeout_s: float = 120) -> str:
    """Every reading answered 202 is in the database (a barrier, not a sleep)."""
    assert ctx.ledger is not None
    accepted = set(ctx.ledger.accepted)
    if not accepted:
        raise Failure(f"no reading was accepted: answers {ctx.ledger.answers}")

    def arrived() -> bool:
        return accepted <= stored(ctx)

    try:
        wait_for("every acknowledged reading stored", arrived, timeout_s=timeout_s)
    except Failure:
        missing = len(accepted - stored(ctx))
        raise Failure(f"{missing} of {len(accepted)} acknowledged readings never stored") from None
    return f"{len(accepted)} acknowledged readings all stored (answers {ctx.ledger.answers})"


def readings_through_nginx(ctx: Context) -> str:
    """Batches posted at :8000 with the generated device key are all stored."""
    ctx.ledger = Ledger(ctx.secrets["DEVICE_API_KEY"], f"CT{ctx.project.name[-6:]}")
    ctx.ledger.post(60)
    return all_acknowledged_stored(ctx)


def both_gateways_served(ctx: Context) -> str:
    """nginx sent the ledger's requests to each of the two gateway replicas."""
    addresses = set()
    for index in (1, 2):
        name = ctx.project.container("gateway", index)
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        addresses.add(run(["docker", "inspect", "--format", template, name]).stdout.strip())
    logs = run(["docker", "logs", ctx.project.container("nginx")]).stdout
    served: dict[str, int] = {}
    for line in logs.splitlines():
        if " /v1/telemetry/megapack " in line and '"status":202' in line:
            upstream = json.loads(line)["upstream"].split(",")[-1].strip().split(":")[0]
            served[upstream] = served.get(upstream, 0) + 1
    if not addresses <= set(served):
        raise Failure(f"gateways {sorted(addresses)}; nginx sent 202'd requests to {served}")
    return f"202s per replica: {served}"
