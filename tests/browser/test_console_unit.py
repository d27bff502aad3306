"""The unit view: live reading, charts, and a command sent from the page to `completed`."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Opened, screenshot
from tests.browser.console import api_get, sign_in
from tests.browser.stack import ConsoleStack


def open_unit(opened: Opened, stack: ConsoleStack, unit_id: str) -> None:
    sign_in(opened.page, stack.monitoring.url)
    opened.page.get_by_role("link", name=unit_id, exact=True).click()
    expect(opened.page.get_by_role("heading", name=unit_id)).to_be_visible()


def test_a_command_sent_from_the_unit_page_reaches_completed(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    open_unit(opened, console_stack, "MP-0001")
    expect(page.locator("figure.chart").first).to_have_attribute(
        "data-points", re.compile(r"^[1-9]")
    )
    page.get_by_label("Command", exact=True).select_option("set_mode")
    page.get_by_label("Mode").select_option("DISCHARGING")
    page.get_by_role("button", name="Send command").click()
    expect(page.locator("#cmd-result")).to_contain_text("Accepted: set_mode")
    row = page.locator("tr[data-command]").first
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "completed")
    command_id = row.get_attribute("data-command")
    command = api_get(console_stack.control.url, f"/v1/commands/{command_id}")
    assert command["status"] == "completed"
    # the form sends no hold: the control service adds COMMAND_HOLD_S (900 s by default)
    assert command["params"] == {"mode": "DISCHARGING", "hold_s": 900}
    # the unit's own telemetry then shows the mode, live on the same page
    expect(page.locator("dl.facts")).to_contain_text("DISCHARGING")
    screenshot(page, "unit")


def test_the_form_shows_the_apis_refusal(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    opened.watch.expected_statuses.add(409)  # the refused command, on purpose
    page = opened.page
    open_unit(opened, console_stack, "MP-0002")  # held in FAULT by the simulator
    page.get_by_label("Command", exact=True).select_option("set_power")
    page.get_by_label("Power kW").fill("100")
    page.get_by_role("button", name="Send command").click()
    expect(page.get_by_role("alert")).to_contain_text("Refused (409)")
    expect(page.get_by_role("alert")).to_contain_text("FAULT")


def test_unit_view_at_phone_width(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page(PHONE)
    open_unit(opened, console_stack, "EV-0001")
    expect(opened.page.get_by_label("Command", exact=True)).to_have_value("start_charging")
    screenshot(opened.page, "unit")
