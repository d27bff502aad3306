"""`python -m bench.micro`: CPU per reading of the gateway's `accept` and the consumer's rows.

In-process and single-threaded, no network: the two pure functions the pipeline spends its
Python time in, measured on the bench's own request bodies (best of three rounds of CPU time).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from api_gateway.ingest import Window, accept
from bench.bodies import BodyMaker, Encoding
from common.codec import envelope_ratings, envelope_rows
from common.keys import ApiKey
from proto.megapack.v1 import telemetry_pb2 as pb

KEY = ApiKey("bench", b"")
SHAPES: list[tuple[Encoding, int, int]] = [
    ("protobuf", 1000, 30),
    ("json", 100, 300),
    ("json", 1, 3000),
]


def best_cpu_s(work: Callable[[], object], rounds: int = 3) -> float:
    """The least CPU time of `rounds` runs of `work`."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    """Print µs of CPU per reading for each shape."""
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.parse_args()
    for encoding, readings, requests in SHAPES:
        maker = BodyMaker(tag="MICRO", readings=readings, encoding=encoding)
        bodies = [maker.next() for _ in range(requests)]

        def accept_all(bodies: list[bytes] = bodies, maker: BodyMaker = maker) -> None:
            window = Window(max_readings=5000, now_us=time.time_ns() // 1000, retention_days=30)
            for body in bodies:
                accept(
                    kind="megapack",
                    body=body,
                    content_type=maker.content_type,
                    key=KEY,
                    window=window,
                )

        cpu_s = best_cpu_s(accept_all)
        print(
            f"accept, {encoding} {readings}/request: {cpu_s / (requests * readings) * 1e6:.2f} µs"
        )
    maker = BodyMaker(tag="MICRO", readings=1000, encoding="protobuf")
    now_us = time.time_ns() // 1000
    envelopes = [
        pb.TelemetryEnvelope.FromString(maker.envelope(received_at_us=now_us)) for _ in range(50)
    ]
    cpu_s = best_cpu_s(lambda: envelope_rows(envelopes))
    print(f"envelope_rows, gateway envelopes: {cpu_s / 50_000 * 1e6:.2f} µs per row")
    cpu_s = best_cpu_s(lambda: envelope_ratings(envelopes))
    print(f"envelope_ratings, gateway envelopes: {cpu_s / 50_000 * 1e6:.2f} µs per row")


if __name__ == "__main__":
    main()
