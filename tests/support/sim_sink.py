"""A tiny HTTP/1.1 server standing in for the gateway: scripted answers, every body kept.

`python -m tests.support.sim_sink --port 8999` runs it alone (answers 202 to everything),
to measure the simulator's own CPU without a gateway sharing the cores.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class Answer:
    """One scripted answer."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # drop the connection without answering


class Sink:
    """Answers the scripted statuses in order, then 202; keeps (path, body) of each request."""

    def __init__(self, script: list[Answer] | None = None, *, keep_bodies: bool = True) -> None:
        self.script: deque[Answer] = deque(script or [])
        self.keep_bodies = keep_bodies
        self.requests: list[tuple[str, bytes, int, float]] = []  # path, body, status, at
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> Sink:
        """Listen on 127.0.0.1."""
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        """Stop listening."""
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length)
                answer = self.script.popleft() if self.script else Answer(202)
                self.requests.append(
                    (path, body if self.keep_bodies else b"", answer.status, loop.time())
                )
                if answer.close:
                    writer.transport.abort()
                    return
                payload = b'{"batch_id":"sink"}' if answer.status == 202 else b'{"detail":"x"}'
                extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
                writer.write(
                    f"HTTP/1.1 {answer.status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n{extra}\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def _serve(port: int) -> None:
    sink = await Sink(keep_bodies=False).start(port)
    print(f"sink listening on {sink.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A gateway stand-in that answers 202.")
    parser.add_argument("--port", type=int, default=8999)
    asyncio.run(_serve(parser.parse_args().port))
