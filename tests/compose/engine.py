"""The Docker engine and one compose project: install, start, copy the checkout, run compose."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOCKET = Path("/var/run/docker.sock")
DOCKERD_LOG = Path("/var/log/megapack-dockerd.log")
STAMP = 1_600_000_000  # the time every file of the clean copy carries
PACKAGES = {"docker": "docker.io", "docker-compose": "docker-compose", "debootstrap": "debootstrap"}


class Failure(Exception):
    """A check failed; the message says which and why."""


def run(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 600,
    check: bool = True,
    stdin_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; Failure (with its output) if it fails."""
    done = subprocess.run(
        list(command),
        input=stdin_text,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if check and done.returncode != 0:
        raise Failure(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def ensure_packages() -> None:
    """apt-get install what is missing of docker.io, docker-compose and debootstrap."""
    missing = [package for tool, package in PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    print(f"installing {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], env=env, timeout_s=900)
    run(["apt-get", "install", "-y", "-q", *missing], env=env, timeout_s=1800)


def engine_answers() -> bool:
    """Whether the Docker engine answers on its socket."""
    return run(["docker", "info"], check=False, timeout_s=60).returncode == 0


def ensure_engine() -> None:
    """Start dockerd in the background when it is not running; wait for it to answer."""
    if engine_answers():
        return
    print("starting dockerd", flush=True)
    with DOCKERD_LOG.open("ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if SOCKET.exists() and engine_answers():
            return
        time.sleep(1)
    raise Failure(f"dockerd did not answer within 90 s (its log: {DOCKERD_LOG})")


def clean_copy() -> Path:
    """The checkout's tracked files (as in the work tree) in a new directory: no .env, no venv."""
    target = Path(tempfile.mkdtemp(prefix="megapack-compose-"))
    listed = run(["git", "ls-files", "-z"], cwd=ROOT).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree stays deleted
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
            # one fixed time: the classic builder's cache keys include it, and a fresh clone's
            # times would rebuild (and reinstall from PyPI) what the same content built before
            os.utime(target / name, (STAMP, STAMP))
    return target


def compose_commands() -> list[list[str]]:
    """Every Compose this host has: Debian's docker-compose (v1) and the v2 plugin."""
    found = []
    if shutil.which("docker-compose"):
        found.append(["docker-compose"])
    if run(["docker", "compose", "version"], check=False).returncode == 0:
        found.append(["docker", "compose"])
    if not found:
        raise Failure("no docker-compose on this host")
    return found


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class Project:
    """One compose project under its own name, run from a clean copy with a scrubbed env."""

    def __init__(
        self, directory: Path, name: str, *, compose: Sequence[str], profiles: Sequence[str] = ()
    ) -> None:
        self.directory = directory
        self.name = name
        self.profiles = list(profiles)
        self.compose = list(compose) + [f"--profile={profile}" for profile in profiles]
        keep = ("PATH", "HOME", "LANG", "DOCKER_HOST", "TMPDIR")
        self.env = {key: os.environ[key] for key in keep if key in os.environ}

    def __call__(
        self, *args: str, timeout_s: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`docker-compose -p NAME ARGS...` in the copy."""
        command = [*self.compose, "-p", self.name, *args]
        return run(command, cwd=self.directory, env=self.env, timeout_s=timeout_s, check=check)

    def services(self) -> set[str]:
        """The services this project runs: those of no profile, and those of its profiles."""
        config = yaml.safe_load(self("config").stdout)
        return {
            name
            for name, service in config["services"].items()
            if not service.get("profiles") or set(service["profiles"]) & set(self.profiles)
        }

    def containers(self) -> dict[str, str]:
        """Container name -> id of every container of the project (running or not)."""
        listed = run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                f"label=com.docker.compose.project={self.name}",
                "--format",
                "{{.Names}} {{.ID}}",
            ]
        ).stdout.split()
        return dict(zip(listed[::2], listed[1::2], strict=True))

    def container(self, service: str, index: int = 1) -> str:
        """The name of one service's container (v1 `p_s_1`, v2 `p-s-1`)."""
        for name in self.containers():
            if name in (f"{self.name}_{service}_{index}", f"{self.name}-{service}-{index}"):
                return name
        raise Failure(f"no container {index} of {service}")

    def leftovers(self) -> list[str]:
        """Containers, volumes and networks of the project that still exist."""
        label = f"label=com.docker.compose.project={self.name}"
        found = []
        for kind in (["ps", "-a"], ["volume", "ls"], ["network", "ls"]):
            out = run(["docker", *kind, "--filter", label, "-q"]).stdout.split()
            found += [f"{kind[0]} {item}" for item in out]
        return found

    def print_logs(self, lines: int = 40) -> None:
        """Each container's last log lines (for a failure's post-mortem)."""
        for name in sorted(self.containers()):
            logs = run(["docker", "logs", "--tail", str(lines), name], check=False)
            print(f"----- {name} (last {lines} lines) -----")
            print((logs.stdout + logs.stderr).rstrip())
