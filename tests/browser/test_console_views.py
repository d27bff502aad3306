"""The EVs and sites views in a real browser, and every view at phone width."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Opened, screenshot
from tests.browser.console import api_get, go
from tests.browser.stack import EVS, ConsoleStack


def test_evs_on_a_map_without_tiles(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    go(opened, console_stack, "EVs")
    expect(page.locator("svg g.ev")).to_have_count(EVS)
    config = api_get(console_stack.monitoring.url, "/v1/console/config")
    for vehicle in api_get(console_stack.monitoring.url, "/v1/console/evs")["items"]:
        soc = vehicle["soc_percent"]
        kind = (
            "critical"
            if soc <= config["ev_critical_battery_percent"]
            else "low"
            if soc <= config["ev_low_battery_percent"]
            else "ok"
        )
        marker = page.locator(f"svg g.ev[data-ev='{vehicle['unit_id']}']")
        expect(marker).to_have_class(re.compile(f"battery-{kind}"))
    for heading in ("Critical battery", "Low battery", "Charging"):
        expect(page.get_by_role("heading", name=re.compile(f"^{heading}: \\d+"))).to_be_visible()
    screenshot(page, "evs")


def test_sites_show_each_site(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    go(opened, console_stack, "Sites")
    expect(page.locator("tr[data-site]")).to_have_count(2)
    expect(page.locator("tr[data-site='SITE-01'] td").nth(3)).to_have_text(re.compile(r"^\d+–\d+"))
    screenshot(page, "sites")


# What each view is for; at phone width it must be on screen, the page no wider than the screen.
CONTENT = {
    "Sites": "tr[data-site]",
    "Alerts": "tr[data-alert]",
    "EVs": "svg g.ev",
    "KPIs": "table[aria-label='KPIs'] tbody tr",
}


@pytest.mark.parametrize("view", list(CONTENT))
def test_views_at_phone_width(
    view: str, console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page(PHONE)
    go(opened, console_stack, view)
    expect(opened.page.locator(CONTENT[view]).first).to_be_visible()
    width = opened.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{view} is {width} px wide"
    screenshot(opened.page, view.lower())
