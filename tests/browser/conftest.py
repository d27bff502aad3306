"""Browser fixtures: the running system, headless Chromium, and pages that watch themselves."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)

from tests.browser.stack import ConsoleStack
from tests.support.stack import OPERATOR_SECRET, ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


# Starting five services and a browser on a busy 2-core machine takes minutes: the first test
# of the run waits for them (ready barriers), so it gets more than the suite's 120 s.
SETUP_TIMEOUT_S = 420


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent) and not item.get_closest_marker(
            "timeout"
        ):
            item.add_marker(pytest.mark.timeout(SETUP_TIMEOUT_S))


@dataclass
class Watch:
    """What a page did: every request URL, requests that tried to leave, errors it logged."""

    urls: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # "Failed to load resource" lines a test provoked on purpose (a wrong key's 401, say)
    expected_statuses: set[int] = field(default_factory=set)
    network_changes: int = 0

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        if "net::ERR_NETWORK_CHANGED" in text:
            # Not the system under test: the machine's interfaces changed (another stack made a
            # network) and Chromium dropped its requests in flight; `sign_in` reloads.
            self.network_changes += 1
            return
        if text.startswith("Failed to load resource") and any(
            f"status of {status}" in text for status in self.expected_statuses
        ):
            return
        self.errors.append(f"{text} ({message.location.get('url', '')})")

    def on_route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def assert_clean(self) -> None:
        """Nothing left the machine, nothing went wrong, the key is in no URL."""
        assert not self.external, f"requests left the machine: {self.external[:5]}"
        assert not self.errors, f"browser console errors: {self.errors[:5]}"
        assert not [url for url in self.urls if OPERATOR_SECRET in url], "the key is in a URL"


@pytest.fixture(scope="session")
def console_stack(database_url: str, amqp_url: str, amqp_prefix: str) -> Iterator[ConsoleStack]:
    """The whole system, once for every browser test."""
    stack = ConsoleStack(
        base_database_url=database_url, amqp_url=amqp_url, prefix=f"{amqp_prefix}browser."
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium (Playwright cannot download its own browser here)."""
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield launched
    launched.close()


@dataclass
class Opened:
    """A page and what it is watched for."""

    page: Page
    watch: Watch


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Opened]]:
    """Pages in fresh contexts, each checked at the end of the test (see `Watch.assert_clean`)."""
    opened: list[Opened] = []

    def open_one(viewport: dict[str, int] | None = None) -> Opened:
        context = browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
        context.set_default_timeout(60_000)
        page = context.new_page()
        watch = Watch()
        page.route("**/*", watch.on_route)
        page.on("request", lambda request: watch.urls.append(request.url))
        page.on("console", watch.on_console)
        page.on("pageerror", lambda error: watch.errors.append(f"uncaught: {error}"))
        opened.append(Opened(page, watch))
        return opened[-1]

    yield open_one
    for item in opened:
        item.page.context.close()
    for item in opened:
        item.watch.assert_clean()


def screenshot(page: Page, name: str) -> None:
    """Save the page as a test artefact (artifacts/screenshots/NAME-WIDTH.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


# A busy 2-core machine (load 30 seen) parses a 1.7 MB script slowly: wait on the page's
# conditions with a generous ceiling; a condition that never holds still fails.
expect.set_options(timeout=60_000)
