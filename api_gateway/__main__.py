"""`python -m api_gateway`: serve the telemetry gateway (port GATEWAY_PORT)."""

from __future__ import annotations

import argparse

from api_gateway.app import create_app
from api_gateway.settings import GatewaySettings
from common.http import serve
from common.logging import configure_logging
from common.settings import load_settings


def main() -> None:
    """Parse the command line, validate settings, serve."""
    parser = argparse.ArgumentParser(
        prog="python -m api_gateway",
        description="Telemetry gateway. Settings come from the environment (see README).",
    )
    parser.add_argument("--port", type=int, help="listen port (default GATEWAY_PORT or 8000)")
    parser.add_argument("--host", default="0.0.0.0", help="listen address")
    args = parser.parse_args()
    settings = load_settings(GatewaySettings, "api_gateway")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    serve(create_app(settings), host=args.host, port=args.port or settings.gateway_port)


if __name__ == "__main__":
    main()
