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
    healing = {node: _partition_handling(ctx, node.split("@")[1]) for node in sorted(NODES)}
    if set(healing.values()) != {"autoheal 15000"}:
        raise Failure(f"partition handling (mode, autoheal timeout ms) per node: {healing}")
    return f"running nodes: {', '.join(sorted(seen))}; each heals with autoheal, 15 s timeout"


def _partition_handling(ctx: Context, service: str) -> str:
    """The node's partition handling and autoheal timeout as it runs (rabbitmq.conf and
    advanced.config both read)."""
    expression = (
        "{ok, M} = application:get_env(rabbit, cluster_partition_handling),"
        " {ok, T} = application:get_env(rabbit, autoheal_state_transition_timeout),"
        ' lists:flatten(io_lib:format("~p ~p", [M, T])).'
    )
    answer = run(
        ["docker", "exec", ctx.project.container(service), "rabbitmqctl", "-q", "eval", expression],
        timeout_s=120,
    )
    return answer.stdout.strip().strip('"')
