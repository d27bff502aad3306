"""`python -m bench.bare --port P`: the yardstick, a bare FastAPI endpoint validating a reading.

It accepts the same single-reading JSON body as the gateway and validates it with the same
model, under the same uvicorn set-up, but does nothing else: no key, no broker.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from common.readings import MegapackReading


def create_app() -> FastAPI:
    """One POST endpoint taking a MegapackReading, and /readyz."""
    app = FastAPI()

    @app.post("/v1/telemetry/megapack", status_code=202)
    async def post_megapack(reading: MegapackReading) -> JSONResponse:
        return JSONResponse({"accepted": 1, "unit_id": reading.unit_id}, status_code=202)

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


def main() -> None:
    """Serve the bare endpoint."""
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="listen port")
    args = parser.parse_args()
    uvicorn.run(
        create_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
