"""Readings posted through nginx, and the ledger of those the gateway accepted (202)."""

from __future__ import annotations

import threading
import time

import httpx

from tests.support.readings import megapack

PUBLIC = "http://127.0.0.1:8000"
UNITS_PER_REQUEST = 5


class Ledger:
    """Posts batches for units of its own; remembers every (unit, epoch ms) answered 202."""

    def __init__(self, device_key: str, prefix: str) -> None:
        self.device_key = device_key
        self.prefix = prefix
        self.accepted: set[tuple[str, int]] = set()
        self.answers: dict[int, int] = {}
        self.last_ms = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def units(self) -> list[str]:
        """The unit ids this ledger posts for."""
        return [f"{self.prefix}-MP-{index:02d}" for index in range(UNITS_PER_REQUEST)]

    def post_one(self, client: httpx.Client) -> int:
        """One batch (one reading per unit, a timestamp never used before); its status."""
        with self.lock:
            self.last_ms = stamp = max(time.time_ns() // 1_000_000, self.last_ms + 1)
        readings = [megapack(unit, stamp, site_id="SITE-CT") for unit in self.units()]
        try:
            answer = client.post(
                f"{PUBLIC}/v1/telemetry/megapack",
                json={"readings": readings},
                headers={"X-API-Key": self.device_key},
                timeout=15,
            )
            status = answer.status_code
        except httpx.HTTPError:
            status = 0  # no answer: not acknowledged, so not owed
        with self.lock:
            self.answers[status] = self.answers.get(status, 0) + 1
            if status == 202:
                self.accepted.update((unit, stamp) for unit in self.units())
        return status

    def post(self, count: int) -> None:
        """`count` batches, one after the other."""
        with httpx.Client() as client:
            for _ in range(count):
                self.post_one(client)

    def start(self, interval_s: float = 0.1) -> None:
        """Keep posting in the background until `stop`."""

        def loop() -> None:
            with httpx.Client() as client:
                while not self._stop.is_set():
                    self.post_one(client)
                    self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="ledger", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background posting and wait for its last request."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def accepted_since(self, since_ms: int) -> int:
        """How many readings were acknowledged with a timestamp after `since_ms`."""
        with self.lock:
            return sum(1 for _, stamp in self.accepted if stamp > since_ms)
