"""The gateway probe sums the request counters of every replica, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from monitoring_service.gateway_probe import GatewayScraper, gateway_rates
from tests.support.stack import free_port

EXPOSITION = """# TYPE gateway_requests_total counter
gateway_requests_total{{kind="megapack",status="202"}} {accepted}
gateway_requests_total{{kind="megapack",status="429"}} {limited}
"""


class Replica:
    """A stand-in gateway replica: a real HTTP server whose counters the test moves."""

    def __init__(self) -> None:
        self.accepted, self.limited = 0, 0
        self.hosts: list[str] = []

    async def metrics(self, request: web.Request) -> web.Response:
        self.hosts.append(request.headers.get("Host", ""))
        text = EXPOSITION.format(accepted=self.accepted, limited=self.limited)
        return web.Response(text=text, content_type="text/plain")


Start = Callable[[], Awaitable[tuple[Replica, str]]]


@pytest.fixture
async def replicas() -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []

    async def start() -> tuple[Replica, str]:
        replica, app = Replica(), web.Application()
        app.router.add_get("/metrics", replica.metrics)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return replica, f"http://localhost:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_rates_are_the_sum_over_every_replica(
    replicas: Start,
) -> None:
    (one, one_url), (two, two_url) = [await replicas() for _ in range(2)]
    scraper = GatewayScraper(urls=(one_url, two_url), timeout_s=5)
    one.accepted, two.accepted, two.limited = 1000, 50, 3
    before = await scraper.sample()
    one.accepted, two.accepted, two.limited = 1030, 70, 5
    after = await scraper.sample()
    assert before is not None
    assert after is not None
    assert len(after.replicas) == 2  # `localhost@127.0.0.1:<port>`: each address on its own
    assert all(name.startswith("localhost@127.0.0.1:") for name in after.replicas)
    assert after.requests == {"megapack|202": 1100, "megapack|429": 5}
    rates = gateway_rates(before, after)
    assert rates is not None
    elapsed_s = (after.scraped_at - before.scraped_at).total_seconds()
    assert rates.requests_per_s == pytest.approx((30 + 20 + 2) / elapsed_s)
    assert (rates.rejections, rates.replicas) == ({"429": 2}, 2)
    assert set(one.hosts) == {one_url.removeprefix("http://")}  # scraped by address, named Host


async def test_an_unreachable_replica_leaves_the_others_counted(
    replicas: Start,
) -> None:
    _, one_url = await replicas()
    scraper = GatewayScraper(urls=(one_url, f"http://127.0.0.1:{free_port()}"), timeout_s=2)
    sample = await scraper.sample()
    assert sample is not None
    assert list(sample.replicas) == [f"localhost@127.0.0.1:{one_url.rsplit(':', 1)[1]}"]
    assert await GatewayScraper(urls=("http://127.0.0.1:1",), timeout_s=1).sample() is None
