"""Alerts, EVs, sites and KPIs views in a real browser, against the running system.

Shelving, assigning, `GET /v1/sites` and `GET /v1/kpis` come with SPEC §13/§14; on a server
without them these views must say so (a notice, no script error) and still show what they can.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Opened, screenshot
from tests.browser.console import api_get, sign_in
from tests.browser.stack import EVS, ConsoleStack

FAULTED = "MP-0002"  # held in FAULT by the simulator: it has an alert
NOT_YET = re.compile(r"not available on this server|done")


def go(opened: Opened, stack: ConsoleStack, view: str) -> None:
    sign_in(opened.page, stack.monitoring.url)
    opened.page.get_by_role("navigation", name="Views").get_by_role("link", name=view).click()
    expect(opened.page.get_by_role("heading", name=view, exact=True)).to_be_visible()
    expect(opened.page.locator("#view[data-loaded]")).to_be_attached()


def test_an_alert_acknowledged_on_screen_is_acknowledged_in_the_api(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    go(opened, console_stack, "Alerts")
    page.get_by_label("Unit").fill(FAULTED)
    page.get_by_label("State").select_option("active")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("tr[data-alert]").first
    expect(row).to_have_attribute("data-state", "active_unacknowledged")  # ISA-18.2 (SPEC §13)
    alert_id = row.get_attribute("data-alert")
    screenshot(page, "alerts")
    row.get_by_role("button", name=re.compile("^Acknowledge")).click()
    expect(
        page.get_by_role("status").filter(has_text=f"Alert {alert_id}: ack done")
    ).to_be_visible()
    alerts = api_get(console_stack.monitoring.url, "/v1/alerts", unit_id=FAULTED)["items"]
    acknowledged = next(a for a in alerts if str(a["alert_id"]) == alert_id)
    assert acknowledged["acknowledged_by"] == "ops"
    assert acknowledged["acknowledged_at"] is not None


@pytest.mark.parametrize("action", ["shelve", "assign"])
def test_shelve_and_assign_work_or_say_they_are_missing(
    action: str, console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    opened.watch.expected_statuses.add(404)  # a server without the §13 actions
    page = opened.page
    go(opened, console_stack, "Alerts")
    row = page.locator("tr[data-alert]").first
    row.get_by_role("button", name=action.capitalize()).click()
    form = page.get_by_role("form", name=re.compile(f"^{action} alert"))
    if action == "shelve":
        form.get_by_label("Reason").fill("planned work")
    else:
        form.get_by_label("Assign to").fill("night-shift")
    form.get_by_role("button", name=action.capitalize()).click()
    expect(page.locator("main")).to_contain_text(NOT_YET)


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
    opened.watch.expected_statuses.add(404)  # a server without GET /v1/sites
    page = opened.page
    go(opened, console_stack, "Sites")
    expect(page.locator("tr[data-site]")).to_have_count(2)
    expect(page.locator("tr[data-site='SITE-01'] td").nth(3)).to_have_text(re.compile(r"^\d+–\d+"))
    screenshot(page, "sites")


def test_kpis_show_or_say_they_are_missing(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    opened.watch.expected_statuses.add(404)  # a server without GET /v1/kpis
    page = opened.page
    go(opened, console_stack, "KPIs")
    expect(page.locator("main")).to_contain_text(
        re.compile(r"not available on this server|Bucket|No buckets")
    )
    screenshot(page, "kpis")


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
