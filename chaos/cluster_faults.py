"""Faults of a three-node RabbitMQ cluster, injected under the load of `make chaos`.

Each step is timed like the other faults (chaos.faults.Injector): from the moment it is
injected, or cleared, until a fresh reading answered 202 is in the database again.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass

import aio_pika

from chaos.faults import Injector, Step
from chaos.rabbit_cluster import Cluster, ClusterError, Node

# kill the ingest queue's leader, bring it back, restart every node in turn, pause the leader
CLUSTER_PLAN = ["poison", "kill_leader", "restart_killed", "rolling", "pause_leader", "resume"]
NODE_WAIT_S = 180.0


@dataclass
class ClusterInjector(Injector):
    """The faults of `make chaos` plus those of the cluster's nodes."""

    cluster: Cluster | None = None
    _down: Node | None = None
    _paused_at: float = 0.0

    @property
    def nodes(self) -> Cluster:
        assert self.cluster is not None, "ClusterInjector needs the cluster"
        return self.cluster

    async def _leader(self) -> Node:
        name = await asyncio.to_thread(self.nodes.queue_leader, self.stack.names.ingest_queue)
        return self.nodes.node(name)

    async def kill_leader(self) -> None:
        """SIGKILL the node leading `ingest.telemetry`; timed until a reading lands without it."""
        node = await self._leader()
        self._down = node

        async def inject() -> None:
            await asyncio.to_thread(self.nodes.kill, node, signal.SIGKILL)

        await self._timed(f"SIGKILL leader node {_short(node)}", inject, _nothing)

    async def restart_killed(self) -> None:
        """Start the killed node again; timed until it serves AMQP (it has rejoined) and a
        reading lands."""
        node = self._down
        assert node is not None, "restart_killed follows kill_leader"
        self._down = None

        async def clear() -> None:
            await self._boot(node)

        await self._timed(f"restart + rejoin {_short(node)}", _nothing, clear)

    async def rolling(self) -> None:
        """Restart every node in turn, each once no quorum queue depends on it alone."""
        for node in self.nodes.nodes:

            async def inject(node: Node = node) -> None:
                await self._not_quorum_critical(node)
                await asyncio.to_thread(self.nodes.stop, node)
                await self.probe.landed()  # the other two serve while it is down

            async def clear(node: Node = node) -> None:
                await self._boot(node)

            await self._timed(f"rolling restart {_short(node)}", inject, clear)

    async def pause_leader(self) -> None:
        """SIGSTOP the leader's VM (cut off: its sockets stay open, it answers nothing); timed
        until a reading lands without it, then held until the other nodes have given it up."""
        node = await self._leader()
        self._down = node
        others = [other for other in self.nodes.nodes if other is not node]
        self._paused_at = time.monotonic()

        async def inject() -> None:
            await asyncio.to_thread(self.nodes.kill, node, signal.SIGSTOP)

        await self._timed(f"SIGSTOP leader node {_short(node)}", inject, _nothing)
        await asyncio.to_thread(
            self.nodes.wait_members, running=len(others), via=others[0], timeout_s=NODE_WAIT_S
        )

    async def resume(self) -> None:
        """SIGCONT the paused node; timed until the cluster is whole (no partition) again and
        the node serves AMQP (autoheal restarts the losing side of the partition)."""
        node = self._down
        assert node is not None, "resume follows pause_leader"
        self._down = None
        paused_s = time.monotonic() - self._paused_at

        async def inject() -> None:
            await asyncio.to_thread(self.nodes.kill, node, signal.SIGCONT)

        async def clear() -> None:
            await asyncio.to_thread(
                self.nodes.wait_members, running=len(self.nodes.nodes), timeout_s=NODE_WAIT_S
            )
            await _serves_amqp(node)

        name = f"SIGCONT {_short(node)} after {paused_s:.0f}s (heals)"
        await self._timed(name, inject, clear)

    async def _boot(self, node: Node) -> None:
        await asyncio.to_thread(self.nodes.boot, node)
        await _serves_amqp(node)

    async def _not_quorum_critical(self, node: Node) -> None:
        deadline = time.monotonic() + NODE_WAIT_S
        while True:
            check = await asyncio.to_thread(
                self.nodes.ctl,
                node,
                "check_if_node_is_quorum_critical",
                tool="rabbitmq-queues",
                check=False,
            )
            if check.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"{node.name} stayed quorum critical: {check.stdout}")
            await asyncio.sleep(1)

    async def run(self, plan: list[str], gap_s: float) -> None:
        """Inject the faults named in `plan` in order (cluster faults and those of chaos)."""
        actions: dict[str, Step] = {
            "kill_leader": self.kill_leader,
            "restart_killed": self.restart_killed,
            "rolling": self.rolling,
            "pause_leader": self.pause_leader,
            "resume": self.resume,
        }
        for name in plan:
            if name not in actions:
                await super().run([name], gap_s)
                continue
            await asyncio.sleep(gap_s)
            await actions[name]()


async def _nothing() -> None:
    """A step with nothing to do (the fault clears itself, or is timed from its injection)."""


async def _serves_amqp(node: Node, timeout_s: float = NODE_WAIT_S) -> None:
    """Wait until the node accepts AMQP connections: it has booted and rejoined its peers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection = await aio_pika.connect(node.url, timeout=5)
        except (OSError, TimeoutError, aio_pika.exceptions.AMQPError):
            if time.monotonic() > deadline:
                raise ClusterError(f"{node.name} never served AMQP again") from None
            await asyncio.sleep(0.5)
            continue
        await connection.close()
        return


def _short(node: Node) -> str:
    return node.short.rsplit("-", 1)[0].removeprefix("megapack-")
