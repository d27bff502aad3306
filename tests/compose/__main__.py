"""`python -m tests.compose` (`make compose-test`): the compose stack on the real Docker engine.

Installs docker.io / docker-compose when missing, starts dockerd when it is not running, makes
the base images exist (pulled, or stand-ins built from Debian packages: deploy/standins), then
runs `docker-compose up --build -d` on a clean copy of the checkout (tracked files, no `.env`)
under a project name of its own and checks it with a ledger. On a failure it prints every
container's last log lines. The stack is removed with `down -v` in every case.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial

from tests.compose import checks, cluster, flow
from tests.compose.engine import (
    Failure,
    Project,
    clean_copy,
    compose_commands,
    ensure_engine,
    ensure_packages,
    port_is_free,
    run,
)

PORTS = (8000, 8001, 8002, 15672)
Step = Callable[[checks.Context], str]
STEPS: list[Step] = [
    checks.every_service_healthy,
    checks.secrets_show,
    checks.no_secret_in_inspect,
    checks.readings_through_nginx,
    checks.both_gateways_served,
    flow.monitoring_reports,
    flow.command_completes,
    flow.management_ui,
    flow.restarts_lose_nothing,
]
# `--profile cluster`: the same stack on three broker nodes
CLUSTER_STEPS: list[Step] = [
    checks.every_service_healthy,
    cluster.three_nodes_clustered,
    checks.secrets_show,
    checks.readings_through_nginx,
    flow.command_completes,
]


def _timed(name: str, action: Callable[[], str]) -> None:
    started = time.monotonic()
    outcome = action()
    print(f"PASS {name} ({time.monotonic() - started:.0f} s): {outcome}", flush=True)


def main() -> None:
    """Run every step; print `N passed, N failed` last; exit 1 on a failure."""
    parser = argparse.ArgumentParser(prog="python -m tests.compose", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the stack up after a failure")
    parser.add_argument(
        "--no-cluster", action="store_true", help="skip the run of the `cluster` profile"
    )
    parser.add_argument(
        "--only-cluster", action="store_true", help="run the `cluster` profile's checks only"
    )
    args = parser.parse_args()
    started = time.monotonic()
    passed, failed = 0, 0
    project: Project | None = None
    try:
        _timed("engine", _engine)
        passed += 1
        copy = clean_copy()
        composes = compose_commands()
        for compose in composes:  # every Compose here accepts the file, with no .env at all
            probe = Project(copy, "config-check", compose=compose)
            _timed(f"{' '.join(compose)} config -q", partial(_valid, probe))
            passed += 1
        _timed("base images", _base_images)
        passed += 1
        busy = [port for port in PORTS if not port_is_free(port)]
        if busy:
            raise Failure(f"ports {busy} are taken: the compose stack publishes them")
        runs = [((), STEPS), (("cluster",), CLUSTER_STEPS)]
        if args.only_cluster:
            runs = runs[1:]
        elif args.no_cluster:
            runs = runs[:1]
        for profiles, steps in runs:
            name = f"mpk-ct-{uuid.uuid4().hex[:6]}"
            project = Project(copy, name, compose=composes[0], profiles=profiles)
            context = checks.Context(project)
            label = " ".join(f"--profile {profile}" for profile in profiles)
            _timed(f"{label} up --build -d".strip(), partial(_up, context.project))
            passed += 1
            for step in steps:
                _timed(step.__name__, partial(step, context))
                passed += 1
            _timed("down -v", partial(flow.down_leaves_nothing, context))
            passed += 1
            project = None
    except (Failure, subprocess.TimeoutExpired, AssertionError) as error:
        failed += 1
        print(f"FAIL: {error}", flush=True)
        if project is not None:
            project.print_logs()
    finally:
        if project is not None and not (failed and args.keep):
            project("down", "-v", "--remove-orphans", "-t", "10", check=False, timeout_s=300)
    print(f"compose-test: {time.monotonic() - started:.0f} s")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def _engine() -> str:
    ensure_packages()
    ensure_engine()
    return "docker answers"


def _valid(project: Project) -> str:
    project("config", "-q")
    return "valid with no .env"


def _up(project: Project) -> str:
    project("up", "--build", "-d", timeout_s=1500)
    return f"project {project.name}"


def _base_images() -> str:
    done = run([sys.executable, "-m", "deploy.standins"], timeout_s=3600)
    return done.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    main()
