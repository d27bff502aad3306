"""Counters of the sender and the periodic stats line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` percentile of `values` (nearest rank; 0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(slots=True)
class Stats:
    """Totals since start; latencies of the current window."""

    generated: int = 0
    sent: int = 0  # readings posted, counting each retry again
    accepted: int = 0
    rejected: int = 0
    dropped: int = 0
    retries: int = 0
    latencies_s: list[float] = field(default_factory=list)
    _last: tuple[int, int] = (0, 0)

    def window(self, elapsed_s: float, *, buffered: int) -> dict[str, Any]:
        """The stats line fields for the last `elapsed_s` seconds; starts a new window."""
        sent, accepted = self.sent - self._last[0], self.accepted - self._last[1]
        self._last = (self.sent, self.accepted)
        latencies, self.latencies_s = self.latencies_s, []
        per_s = max(elapsed_s, 1e-9)
        return {
            "sent_per_s": round(sent / per_s, 1),
            "accepted_per_s": round(accepted / per_s, 1),
            "retries": self.retries,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "buffered": buffered,
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        }

    def summary(self, *, elapsed_s: float, buffered: int) -> dict[str, Any]:
        """Totals for the final line."""
        return {
            "elapsed_s": round(elapsed_s, 1),
            "generated": self.generated,
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "retries": self.retries,
            "buffered": buffered,
        }
