"""`/docs` and `/redoc` of every service render with no request leaving the machine."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Opened, screenshot
from tests.browser.stack import ConsoleStack

SERVICES = {
    "gateway": ("gateway", "Megapack telemetry gateway"),
    "control": ("control", "Megapack control service"),
    "monitoring": ("monitoring", "Megapack monitoring service"),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_swagger_ui_renders_offline(
    service: str, console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    attribute, title = SERVICES[service]
    url = getattr(console_stack, attribute).url
    opened = open_page()
    opened.page.goto(f"{url}/docs")
    expect(opened.page.locator(".swagger-ui .info .title")).to_contain_text(title)
    # the operations are listed: the OpenAPI document was fetched and rendered
    expect(opened.page.locator(".opblock").first).to_be_visible()
    screenshot(opened.page, f"docs-{service}")
    assert not opened.watch.external


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_redoc_renders_offline(
    service: str, console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    attribute, title = SERVICES[service]
    url = getattr(console_stack, attribute).url
    opened = open_page()
    opened.page.goto(f"{url}/redoc")
    expect(opened.page.locator("h1").first).to_contain_text(title)
    expect(opened.page.locator("[data-section-id^='tag/']").first).to_be_attached()
    assert not opened.watch.external
