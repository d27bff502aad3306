"""Processes of a bench run: start, wait until ready, read their CPU and memory, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def status_kb(pid: int, field_name: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmHWM: peak RSS, VmRSS: RSS now); 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pids_named(*names: str) -> list[int]:
    """Pids whose command name is one of `names` (to account for PostgreSQL and RabbitMQ)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Proc:
    """One `python -m <module>` child process with its output in a log file."""

    name: str
    module: str
    env: Mapping[str, str]
    args: tuple[str, ...] = ()
    port: int | None = None
    log_dir: Path = Path(tempfile.gettempdir())
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    peak_rss_kb: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"bench-{self.name}-{os.getpid()}.log"

    def start(self) -> Proc:
        """Start the process (not waiting for it)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    async def wait_ready(self, timeout_s: float = 120.0, path: str = "/readyz") -> None:
        """Wait until the HTTP process answers 200 on `path`."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                self.assert_running()
                try:
                    if (await client.get(self.url + path)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout_s}s; see {self.log_path}")

    def assert_running(self) -> None:
        """Raise with the log's tail if the process exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited {self.process.returncode}:\n{tail}")

    def sample_peak(self) -> int:
        """Peak RSS so far in kB (kept after the process exits)."""
        if self.process is not None and self.process.poll() is None:
            self.peak_rss_kb = max(self.peak_rss_kb, status_kb(self.pid, "VmHWM"))
        return self.peak_rss_kb

    async def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, wait, SIGKILL if it does not exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.sample_peak()
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(self.process.wait), timeout_s)
        except TimeoutError:
            self.process.kill()
            self.process.wait(10)
