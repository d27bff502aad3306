"""The alerts view in a real browser: what an operator does on screen is what the API records."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Opened, screenshot
from tests.browser.console import api_get, go
from tests.browser.stack import ConsoleStack

FAULTED = "MP-0002"  # held in FAULT by the simulator: it has an alert


def alerts_of(opened: Opened, stack: ConsoleStack, state: str = "") -> Locator:
    """The alerts view, filtered on screen to the faulted unit's alerts: their rows."""
    go(opened, stack, "Alerts")
    page = opened.page
    page.get_by_label("Unit").fill(FAULTED)
    page.get_by_label("State").select_option(state)
    page.get_by_role("button", name="Filter").click()
    return page.locator("tr[data-alert]")


def done(page: Page, alert_id: str, action: str) -> None:
    """Wait for the view to say the API took the action."""
    message = f"Alert {alert_id}: {action} done"
    expect(page.get_by_role("status").filter(has_text=message)).to_be_visible()


def test_an_alert_acknowledged_on_screen_is_acknowledged_in_the_api(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    row = alerts_of(opened, console_stack, "active").first
    expect(row).to_have_attribute("data-state", "active_unacknowledged")  # ISA-18.2 (SPEC §13)
    alert_id = row.get_attribute("data-alert")
    screenshot(page, "alerts")
    row.get_by_role("button", name=re.compile("^Acknowledge")).click()
    done(page, str(alert_id), "ack")
    alert = api_get(console_stack.monitoring.url, f"/v1/alerts/{alert_id}")
    assert (alert["acknowledged_by"], alert["acknowledged"]) == ("ops", True)
    assert alert["acknowledged_at"] is not None


def test_an_alert_shelved_on_screen_is_shelved_in_the_api_until_unshelved(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page, url = opened.page, console_stack.monitoring.url
    row = alerts_of(opened, console_stack).and_(page.locator(":not([data-shelved])")).first
    alert_id = str(row.get_attribute("data-alert"))
    row.get_by_role("button", name=re.compile("^Shelve")).click()
    form = page.get_by_role("form", name=f"shelve alert {alert_id}")
    form.get_by_label("Shelve for").select_option(label="1 hour")
    form.get_by_label("Reason").fill("planned work")
    asked = datetime.now(UTC)
    form.get_by_role("button", name="Shelve").click()
    done(page, alert_id, "shelve")
    alert = api_get(url, f"/v1/alerts/{alert_id}")
    assert (alert["shelved"], alert["shelved_by"], alert["shelve_reason"]) == (
        True, "ops", "planned work",
    )  # fmt: skip
    until = datetime.fromisoformat(alert["shelved_until"])
    assert abs(until - (asked + timedelta(hours=1))) < timedelta(minutes=2)
    active = api_get(url, "/v1/alerts", state="active", unit_id=FAULTED)["items"]
    assert alert_id not in [str(item["alert_id"]) for item in active]  # hidden from the alarm list
    shelved = page.locator(f"tr[data-alert='{alert_id}']")
    expect(shelved.locator("[data-field='state']")).to_contain_text("shelved until")
    screenshot(page, "alerts-shelved")
    shelved.get_by_role("button", name=re.compile("^Unshelve")).click()
    done(page, alert_id, "unshelve")
    assert api_get(url, f"/v1/alerts/{alert_id}")["shelved"] is False


def test_an_alert_assigned_on_screen_is_assigned_in_the_api(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    row = alerts_of(opened, console_stack, "active").first
    alert_id = str(row.get_attribute("data-alert"))
    row.get_by_role("button", name=re.compile("^Assign")).click()
    form = page.get_by_role("form", name=f"assign alert {alert_id}")
    form.get_by_label("Assign to").fill("night-shift")
    form.get_by_role("button", name="Assign").click()
    done(page, alert_id, "assign")
    alert = api_get(console_stack.monitoring.url, f"/v1/alerts/{alert_id}")
    assert (alert["assigned_to"], alert["assigned_by"]) == ("night-shift", "ops")
    assigned = page.locator(f"tr[data-alert='{alert_id}'] [data-field='assigned']")
    expect(assigned).to_have_text("night-shift")
