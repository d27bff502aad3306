"""Prometheus metrics of the control service (module-level: one registry per process)."""

from prometheus_client import Counter, Histogram

COMMANDS = Counter(
    "control_commands_total", "Command requests by type and HTTP status", ["type", "status"]
)
TRANSITIONS = Counter(
    "control_command_transitions_total", "Status changes of commands, by new status", ["status"]
)
ANSWERS = Counter(
    "control_answers_total",
    "Answers received from units, by status and whether they moved the command",
    ["status", "applied"],
)
PUBLISHES = Counter("control_publishes_total", "Command publishes by outcome", ["outcome"])
TIME_TO_FINAL = Histogram(
    "control_command_seconds",
    "Time from a command's creation to its final status",
    ["status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
