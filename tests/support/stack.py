"""Start the real services as subprocesses for integration and end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from common.broker import connect_failover
from common.topology import Names, declare_telemetry

ROOT = Path(__file__).resolve().parents[2]
DEVICE_SECRET = "dev-secret-for-tests"
SCOPED_SECRET = "site-01-secret"
FLEET_SECRET = "fleet-a-secret"
OPERATOR_SECRET = "ops-secret-for-tests"
DEVICE_KEYS = (
    f"sim:{DEVICE_SECRET},north:{SCOPED_SECRET}:site=SITE-01,fleet-a:{FLEET_SECRET}:fleet=FLEET-A"
)
OPERATOR_KEYS = f"ops:{OPERATOR_SECRET}"
# The services behind operator keys, and the variable naming each one's port.
OPERATOR_SERVICES = {"control_service": "CONTROL_PORT", "monitoring_service": "MONITORING_PORT"}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


STARTED_SERVICES: list[Service] = []  # every service this test run started (for log checks)


class Service:
    """One service process; its output goes to a log file for post-mortems."""

    def __init__(self, module: str, env: Mapping[str, str], *args: str, port: int | None = None):
        self.module = module
        self.env = {**os.environ, **env}
        self.args = args
        self.port = port
        self.log_path = Path(f"/tmp/megapack-test-{module}-{os.getpid()}-{time.time_ns()}.log")
        self.process: subprocess.Popen[bytes] | None = None
        if module == "simulator":  # kept across this object's restarts, like the log
            self.env.setdefault("SIM_AGENT_JOURNAL", str(self.log_path.with_suffix(".journal")))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        """Start the process (without waiting for it to be ready)."""
        if self.module == "api_gateway":
            # The gateway only publishes: the queues exist before it starts (compose declares
            # them from definitions.json; under `make run` the consumer does).
            declare_topology(self.env["AMQP_URL"], self.env.get("AMQP_PREFIX", ""))
        STARTED_SERVICES.append(self)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout_s: float = 60.0, path: str = "/readyz") -> Service:
        """Wait until the HTTP service answers 200 on `path`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.module} not ready after {timeout_s}s:\n{self.output()}")

    def assert_running(self) -> None:
        """Fail with the process output if it exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.module} exited {self.process.returncode}:\n{self.output()}"
            )

    def output(self) -> str:
        """What the process printed so far (last 4,000 characters)."""
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def service_env(*, database_url: str, amqp_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment every test service gets."""
    return {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "AMQP_PREFIX": prefix,
        "DEVICE_API_KEYS": DEVICE_KEYS,
        "OPERATOR_API_KEYS": OPERATOR_KEYS,
        "LOG_FORMAT": "json",
        "INGESTION_METRICS_PORT": "0",
        **extra,
    }


def declare_topology(amqp_url: str, prefix: str) -> None:
    """Declare the telemetry exchange and queues under `prefix` (callable inside a loop too)."""

    async def declare() -> None:
        connection = await connect_failover(amqp_url)  # one URL, or a cluster's list
        async with connection:
            await declare_telemetry(await connection.channel(), Names(prefix))

    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(declare())
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]
