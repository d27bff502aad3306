"""One node of the throwaway cluster (chaos.rabbit_cluster): its files, environment and state.

Everything a node owns lives under its own directory: configuration, data, logs, plugins file
(none), pid file. The CLI commands aimed at it share its environment, so they find the cluster's
cookie and never the machine's broker.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

RABBIT_BIN = Path(os.environ.get("RABBITMQ_BIN_DIR", "/usr/lib/rabbitmq/bin"))
# Seconds before a silent peer counts as down (Erlang's default is 60): a paused node is noticed
# within ~1.25 × this by the others.
NET_TICKTIME_S = 8
AUTOHEAL_TIMEOUT_MS = 15_000
CLI_TIMEOUT_S = 300.0  # a barrier: every CLI call boots a VM, minutes on a loaded host


class ClusterError(RuntimeError):
    """A node did not start, join, stop or answer as it should."""


@dataclass
class Node:
    """One node of the cluster and the files it owns."""

    short: str  # megapack-c1-<run>
    amqp_port: int
    dist_port: int
    base: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.short}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def pid_file(self) -> Path:
        return self.base / "beam.pid"

    def beam_pid(self) -> int | None:
        """The Erlang VM's process id (the wrapper script's child), if it is running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def env(self, cookie_home: Path) -> dict[str, str]:
        """The environment of this node's server and of the CLI commands aimed at it."""
        keep = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG")}
        return {
            **keep,
            "HOME": str(cookie_home),  # the cluster's own .erlang.cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_CONFIG_FILES": str(self.base / "conf.d"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"-kernel net_ticktime {NET_TICKTIME_S} "
            "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def write_files(self, peers: Iterable[str]) -> None:
        """Configuration of its own: listeners, partition handling, no plugins."""
        for folder in ("mnesia", "log", "conf.d"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "enabled_plugins").write_text("[].\n")
        # A loser of autoheal restarts after this long without the winner's go-ahead (default
        # 60 s): when a paused node resumes, the winner may have lost its monitor on it and
        # never see it stop, so this timeout is what ends the healing.
        (self.base / "advanced.config").write_text(
            f"[{{rabbit, [{{autoheal_state_transition_timeout, {AUTOHEAL_TIMEOUT_MS}}}]}}].\n"
        )
        discovery = "".join(
            f"cluster_formation.classic_config.nodes.{index} = {peer}\n"
            for index, peer in enumerate(peers, start=1)
        )
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            # a fresh node joins the first listed peer that answers (the first one boots alone)
            "cluster_formation.peer_discovery_backend = classic_config\n"
            f"{discovery}"
            "cluster_partition_handling = autoheal\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )

    def paused(self) -> bool:
        """Whether its VM is stopped (SIGSTOP) right now."""
        pid = self.beam_pid()
        if pid is None:
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state == "T"

    def tail(self, lines: int = 5) -> str:
        """The end of a node's console output and log, for error messages."""
        text = ""
        for path in (self.base / "server.out", *sorted((self.base / "log").glob("*.log"))):
            if path.exists():
                text += path.read_text(errors="replace")
        return " | ".join(text.strip().splitlines()[-lines:])[-1500:]


def machine_broker_nodes() -> list[str]:
    """The cluster members of the machine's own broker (read-only; it must stay one node)."""
    done = subprocess.run(
        ["rabbitmqctl", "-q", "cluster_status", "--formatter", "json"],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=True,
    )  # fmt: skip
    status = json.loads(done.stdout)
    return sorted({*status.get("disk_nodes", []), *status.get("ram_nodes", [])})


def node_user() -> pwd.struct_passwd | None:
    """As root, the nodes run as the `rabbitmq` user (as the packaged broker does)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("rabbitmq")
    except KeyError:
        return None
