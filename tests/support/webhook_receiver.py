"""A webhook receiver for the notification tests: logs every POST, fails the first answers.

`python -m tests.support.webhook_receiver --port P --log FILE [--fail-first N]`: every request
is appended to FILE as one JSON line (`status`, `signature`, `event_id`, `body`), the first N
answered 500, the rest 200.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiohttp import web


def main() -> None:
    """Parse the arguments and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="listen port on 127.0.0.1")
    parser.add_argument("--log", type=Path, required=True, help="JSON lines file to append to")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 500 this many times")
    args = parser.parse_args()
    failures = {"left": args.fail_first}
    log = args.log.open("a", buffering=1)

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        status = 500 if failures["left"] > 0 else 200
        failures["left"] -= 1
        line = {
            "status": status,
            "signature": request.headers.get("X-Signature"),
            "event_id": request.headers.get("X-Event-Id"),
            "body": body.decode(),
        }
        log.write(json.dumps(line) + "\n")
        return web.Response(status=status, text="failing on purpose" if status == 500 else "ok")

    async def alive(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", alive)
    app.router.add_post("/{tail:.*}", receive)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, handle_signals=True)


if __name__ == "__main__":
    main()
