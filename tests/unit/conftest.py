"""Unit tests do no I/O beyond files: starting a process or opening a connection fails here
(such tests belong in tests/integration)."""

from __future__ import annotations

import socket
import subprocess
from typing import Any, NoReturn

import pytest


def _refused(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError(f"a unit test may not {what}: move it to tests/integration")

    return refuse


@pytest.fixture(autouse=True)
def no_processes_or_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse subprocesses and outgoing connections for the duration of each unit test."""
    monkeypatch.setattr(subprocess, "Popen", _refused("start a process"))
    monkeypatch.setattr(socket.socket, "connect", _refused("open a network connection"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refused("open a network connection"))
    monkeypatch.setattr(socket, "create_connection", _refused("open a network connection"))
