"""The `cluster` profile: three RabbitMQ nodes form one cluster at boot; the stack runs on it."""

from __future__ import annotations

import json

from tests.compose.checks import Context, wait_for
from tests.compose.engine import Failure, run

NODES = {"rabbit@rabbitmq", "rabbit@rabbitmq-2", "rabbit@rabbitmq-3"}


def running_nodes(ctx: Context) -> set[str]:
    """The nodes the first broker sees running in its cluster."""
    broker = ctx.project.container("rabbitmq")
    status = run(
        ["docker", "exec", broker, "rabbitmqctl", "-q", "cluster_status", "--formatter", "json"],
        timeout_s=120,
    )
    return set(json.loads(status.stdout)["running_nodes"])


def three_nodes_clustered(ctx: Context) -> str:
    """Every node of the profile is a running member of one cluster."""
    seen: set[str] = set()

    def formed() -> bool:
        seen.clear()
        seen.update(running_nodes(ctx))
        return seen == NODES

    try:
        wait_for("a cluster of three nodes", formed, timeout_s=180, every_s=5)
    except Failure:
        raise Failure(f"the cluster's running nodes: {sorted(seen)}") from None
    return f"running nodes: {', '.join(sorted(seen))}"
