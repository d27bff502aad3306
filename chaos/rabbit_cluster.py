"""A throwaway RabbitMQ cluster of three nodes on this host, beside the machine's own broker.

Each node gets its own name (`megapack-c1-<run>@localhost`), AMQP and distribution ports,
configuration, data and log directories and plugins file (none), all under one temporary
directory, and an Erlang cookie of its own: a command meant for these nodes can never reach
the machine's broker (which holds another cookie), and nothing of the machine's broker is read,
changed or joined. `close()` stops the nodes and deletes the directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from chaos.rabbit_node import (
    CLI_TIMEOUT_S,
    RABBIT_BIN,
    ClusterError,
    Node,
    machine_broker_nodes,
    node_user,
)
from tests.support.stack import free_port

__all__ = ["Cluster", "ClusterError", "Node", "machine_broker_nodes"]

log = structlog.get_logger("chaos.cluster")


@dataclass
class Cluster:
    """Three (or `size`) nodes joined into one cluster; `start()`, faults, `close()`."""

    size: int = 3
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix=f"megapack-cluster-{self.run_id}-"))
        self.cookie_home = self.base / "home"
        self._user = node_user()
        for index in range(1, self.size + 1):
            short = f"megapack-c{index}-{self.run_id}"
            self.nodes.append(Node(short, free_port(), free_port(), self.base / short))

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def amqp_url(self) -> str:
        """Every node, comma-separated (what AMQP_URL holds for a cluster)."""
        return ",".join(self.urls)

    def node(self, name: str) -> Node:
        """The node of that full name."""
        return next(node for node in self.nodes if node.name == name)

    def start(self) -> None:
        """Write every node's files, boot them, join the others to the first, verify."""
        self.cookie_home.mkdir(parents=True)
        cookie = self.cookie_home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        for node in self.nodes:
            node.write_files(peer.name for peer in self.nodes)
        if self._user is not None:
            for path in (self.base, *self.base.rglob("*")):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        first, others = self.nodes[0], self.nodes[1:]
        self.boot(first)  # alone first: booted together, fresh nodes could each start alone
        self.await_startup(first)
        for node in others:
            self.boot(node)
        _each(self.await_startup, others)
        self.wait_members(running=len(self.nodes), via=first)
        log.info("cluster_started", nodes=[node.name for node in self.nodes])

    def boot(self, node: Node) -> None:
        """Start one node's server process (in the background)."""
        node.pid_file.unlink(missing_ok=True)
        out = (node.base / "server.out").open("ab")
        node.process = subprocess.Popen(
            [str(RABBIT_BIN / "rabbitmq-server")],
            env=node.env(self.cookie_home),
            cwd=node.base,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._as_user(),
        )

    def await_startup(self, node: Node, timeout_s: float = CLI_TIMEOUT_S) -> None:
        """Wait until the node's broker application is running."""
        deadline = time.monotonic() + timeout_s
        while node.beam_pid() is None:
            if node.process is not None and node.process.poll() is not None:
                raise ClusterError(f"{node.name} exited at start: {node.tail()}")
            if time.monotonic() > deadline:
                raise ClusterError(f"{node.name} wrote no pid file: {node.tail()}")
            time.sleep(0.2)
        self.ctl(node, "await_startup", "--timeout", str(int(timeout_s)), timeout_s=timeout_s + 10)

    def ctl(
        self,
        node: Node,
        *args: str,
        tool: str = "rabbitmqctl",
        timeout_s: float = CLI_TIMEOUT_S,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run a CLI command aimed at exactly this node (`-n <node>`, the cluster's cookie)."""
        command = [str(RABBIT_BIN / tool), "-n", node.name, "-q", *args]
        done = subprocess.run(
            command, env=node.env(self.cookie_home), capture_output=True, text=True,
            timeout=timeout_s, check=False, cwd=node.base, **self._as_user(),
        )  # fmt: skip
        if check and done.returncode != 0:
            raise ClusterError(f"{tool} {' '.join(args)} on {node.name}: {done.stderr.strip()}")
        return done

    def ctl_json(self, node: Node, *args: str, tool: str = "rabbitmqctl") -> Any:
        """A CLI command's JSON answer."""
        return json.loads(self.ctl(node, *args, "--formatter", "json", tool=tool).stdout or "null")

    def running_members(self, via: Node) -> tuple[set[str], bool]:
        """The running nodes as `via` sees them, and whether it reports a partition."""
        status = self.ctl_json(via, "cluster_status")
        return set(status.get("running_nodes", [])), bool(status.get("partitions"))

    def wait_members(
        self, *, running: int, via: Node | None = None, timeout_s: float = 90
    ) -> float:
        """Wait until `via` (default: every live node) sees `running` nodes and no partition."""
        started = time.monotonic()
        while True:
            try:
                views = _each(self.running_members, [via] if via else self.live_nodes())
                if all(len(nodes) == running and not split for nodes, split in views):
                    return time.monotonic() - started
            except (ClusterError, subprocess.TimeoutExpired, json.JSONDecodeError):
                pass
            if time.monotonic() - started > timeout_s:
                raise ClusterError(f"cluster did not reach {running} running nodes in {timeout_s}s")
            time.sleep(0.5)

    def live_nodes(self) -> list[Node]:
        """Nodes whose VM runs and is not paused by us."""
        return [node for node in self.nodes if node.beam_pid() is not None and not node.paused()]

    def queue_leader(self, queue: str, via: Node | None = None) -> str:
        """The node that leads a quorum queue now."""
        for node in [via] if via else self.live_nodes():
            try:
                rows = self.ctl_json(node, "list_queues", "name", "leader", "members")
            except (ClusterError, subprocess.TimeoutExpired, json.JSONDecodeError):
                continue
            for row in rows or []:
                if row.get("name") == queue and row.get("leader"):
                    return str(row["leader"])
        raise ClusterError(f"no leader found for {queue}")

    def queue_members(self, queue: str, via: Node) -> list[str]:
        """The nodes holding a replica of a quorum queue."""
        for row in self.ctl_json(via, "list_queues", "name", "members") or []:
            if row.get("name") == queue:
                return [str(member) for member in row.get("members", [])]
        return []

    def kill(self, node: Node, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send a signal to the node's Erlang VM (SIGKILL: it dies at once, no goodbye)."""
        pid = node.beam_pid()
        if pid is None:
            raise ClusterError(f"{node.name} is not running")
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            self._reap(node)

    def stop(self, node: Node) -> None:
        """Stop one node cleanly (`rabbitmqctl stop`) and wait for its process to end."""
        self.ctl(node, "stop", check=False)
        self._reap(node)

    def _reap(self, node: Node, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while node.beam_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if node.process is not None:
            try:
                node.process.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)
            node.process = None

    def close(self) -> None:
        """Stop every node (SIGTERM is a clean stop; a paused one is resumed), delete all."""
        for node in self.nodes:
            pid = node.beam_pid()
            if pid is not None:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for node in self.nodes:
            while node.beam_pid() is not None and time.monotonic() < deadline:
                time.sleep(0.2)
            pid = node.beam_pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            self._reap(node, timeout_s=20)
        for node in self.nodes:  # the logs outlive the cluster, like the services' logs
            for path in (node.base / "log").glob("*.log"):
                shutil.copyfile(path, Path(tempfile.gettempdir()) / f"{path.stem}.rabbit.log")
        shutil.rmtree(self.base, ignore_errors=True)
        log.info("cluster_removed", base=str(self.base))

    def _as_user(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}


def _each(action: Callable[[Node], Any], nodes: list[Node]) -> list[Any]:
    """Run `action` on each node at once (every CLI call boots a VM: seconds on a busy host)."""
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return list(pool.map(action, nodes))
