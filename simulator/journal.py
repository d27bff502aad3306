"""The unit agent's journal: the answers it gave, on disk, so a restart never runs a command again.

A command is delivered again when the agent dies after answering but before its ack reached
the broker. With answers only in memory the restarted agent would execute it a second time;
with the journal it answers the redelivery with what it said before. Each answer is written
and fsynced before it is published, so no answer the control service saw is missing here.

Format: one line per answer, the CRC-32 of a serialized `CommandAck` (8 hex digits) and then
its hex. A line torn by a crash fails its checksum and is skipped on load; a write that fails
half-way is cut off again, so the next answer starts a line of its own. The file is rewritten
(to a temporary file, then renamed) with the newest `remembered` commands once it has grown to
twice what the last rewrite left, so each rewrite is paid for by as many appends.
"""

from __future__ import annotations

import os
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import structlog
from google.protobuf.message import DecodeError

from proto.megapack.v1 import commands_pb2

Ack = commands_pb2.CommandAck
log = structlog.get_logger("simulator.journal")


def _line(ack: Ack) -> bytes:
    payload = ack.SerializeToString()
    return f"{zlib.crc32(payload):08x}{payload.hex()}\n".encode("ascii")


def _parse(line: bytes) -> Ack | None:
    """The answer on a line, or None when the line is torn or altered."""
    try:
        payload = bytes.fromhex(line[8:].decode("ascii"))
        if not payload or int(line[:8], 16) != zlib.crc32(payload):
            return None
        return Ack.FromString(payload)
    except (ValueError, DecodeError):
        return None


class AnswerJournal:
    """Append-only file of answers, keeping the newest `remembered` commands on compaction."""

    def __init__(self, path: Path, *, remembered: int) -> None:
        self._path, self._remembered = path, remembered
        self._lines = self._limit = self._size = 0
        self._fd = -1

    def load(self) -> OrderedDict[str, list[Ack]]:
        """Every command answered before, oldest first; then the journal is open for appends."""
        answered: OrderedDict[str, list[Ack]] = OrderedDict()
        torn = 0
        if self._path.exists():
            for line in self._path.read_bytes().splitlines():
                ack = _parse(line)
                if ack is None:
                    torn += 1
                    continue
                answered.setdefault(ack.command_id, []).append(ack)
                answered.move_to_end(ack.command_id)
        while len(answered) > self._remembered:
            answered.popitem(last=False)
        self._rewrite(answered)
        log.info("agent_journal_loaded", path=str(self._path), commands=len(answered), torn=torn)
        return answered

    def append(self, acks: Iterable[Ack], *, answered: OrderedDict[str, list[Ack]]) -> None:
        """Write and fsync answers before anyone hears them; compact when the file is long."""
        data = b"".join(map(_line, acks))
        if not data:
            return
        view = memoryview(data)
        try:
            while view:  # a regular file may take less than asked for (a full disk, a signal)
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self._size)  # no half line for the next answer to join
            raise
        self._size += len(data)
        self._lines += data.count(b"\n")
        if self._lines > self._limit:
            self._rewrite(answered)

    def close(self) -> None:
        """Close the file (answers are already on disk)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _rewrite(self, answered: OrderedDict[str, list[Ack]]) -> None:
        newest = list(answered.values())[-self._remembered :]
        lines = [_line(ack) for acks in newest for ack in acks]
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_name(self._path.name + ".tmp")
        with temporary.open("wb") as file:
            file.writelines(lines)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self._path)
        directory = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        self.close()
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
        self._lines, self._size = len(lines), sum(map(len, lines))
        self._limit = max(2 * self._lines, 2 * self._remembered)
