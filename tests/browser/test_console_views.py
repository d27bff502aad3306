"""The EVs and sites views in a real browser, and every view at phone width."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

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


def test_sites_show_each_site_and_its_last_hours(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page, url = opened.page, console_stack.monitoring.url
    go(opened, console_stack, "Sites")
    sites = api_get(url, "/v1/sites")["items"]
    expect(page.locator("tr[data-site]")).to_have_count(len(sites))
    for site in sites:
        row = page.locator(f"tr[data-site='{site['site_id']}']")
        expect(row.locator("td").first).to_have_text(f"{site['reporting']} of {site['units']}")
        expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^\d+–\d+$"))
    expect(page.locator("tr[data-site='SITE-01'] td").last).to_have_text(
        re.compile("critical|warning|info|none")
    )
    charts_of(page, url, "SITE-01")  # the first site is shown at once
    screenshot(page, "sites")
    page.get_by_role("button", name=re.compile("^SITE-02")).click()
    charts_of(page, url, "SITE-02")
    expect(page.get_by_role("button", name=re.compile("^SITE-02"))).to_have_attribute(
        "aria-pressed", "true"
    )


def charts_of(page: Page, url: str, site_id: str) -> None:
    """The site's charts are on screen, drawn from GET /v1/sites/{site_id}/telemetry."""
    charts = page.locator(f"[data-chart-site='{site_id}']")
    expect(charts.locator("figure[data-series]")).to_have_count(3)
    for figure in charts.locator("figure[data-series]").all():
        expect(figure).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    window = {name: charts.get_attribute(f"data-{name}") for name in ("from", "to")}
    history = api_get(url, f"/v1/sites/{site_id}/telemetry", **window)["items"]
    power = charts.locator("figure[data-series='net_power_mw']")
    points = int(power.get_attribute("data-points") or 0)
    assert points <= len(history) <= points + 1  # a minute may have begun since
    assert power.get_attribute("data-first-bucket") == history[0]["bucket"]
    if points > 1:  # the first minute is over: its figures no longer change
        for figure in charts.locator("figure[data-series]").all():
            field = str(figure.get_attribute("data-series"))
            shown = float(figure.get_attribute("data-first-value") or "nan")
            assert shown == pytest.approx(history[0][field]), field


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
