"""Sign-in and the fleet overview in a real browser, against the running system."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Opened, screenshot
from tests.browser.console import api_get, expected_figures, screen_figures, sign_in
from tests.browser.stack import MEGAPACKS, ConsoleStack
from tests.support.stack import OPERATOR_SECRET


def test_a_wrong_key_is_refused(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    opened.watch.expected_statuses.add(401)  # the refused sign-in request, on purpose
    sign_in(opened.page, console_stack.monitoring.url, key="not-a-key")
    expect(opened.page.get_by_role("alert")).to_contain_text("Key refused (401)")
    expect(opened.page.get_by_role("navigation", name="Views")).to_be_hidden()
    assert opened.page.evaluate("sessionStorage.length") == 0
    screenshot(opened.page, "signin-refused")


def test_overview_figures_equal_the_api(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page, url = opened.page, console_stack.monitoring.url
    sign_in(page, url)
    expect(page.locator("tr[data-unit]")).to_have_count(MEGAPACKS + 8)
    deadline = time.monotonic() + 30
    while True:  # the report changes every second: compare a screen and an API of one report
        before = screen_figures(page)
        report = api_get(url, "/v1/monitoring/summary")
        after = screen_figures(page)
        shown = next(
            (s for s in (before, after) if s.get("generated_at") == report["generated_at"]), None
        )
        if shown is not None and int(report["units"]["total"]) == MEGAPACKS + 8:
            break
        assert time.monotonic() < deadline, f"never the same report: {before} / {report}"
    expected = expected_figures(report)
    assert {name: shown[name] for name in expected} == expected
    screenshot(page, "overview")


def test_live_figures_change_without_a_reload(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    sign_in(page, console_stack.monitoring.url)
    row = page.locator("tr[data-unit='MP-0001'] [data-field='last_seen']")
    expect(row).to_have_attribute("data-at", re.compile(r"^\d{4}-"))
    first_reading = row.get_attribute("data-at")
    first_report = page.locator("[data-figure='generated_at']").get_attribute("data-at")
    page.evaluate("window.__not_reloaded = true")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.wait_for_function(
        """([reading, report]) =>
            document.querySelector("tr[data-unit='MP-0001'] [data-field='last_seen']")
              .dataset.at !== reading
            && document.querySelector("[data-figure='generated_at']").dataset.at !== report""",
        arg=[first_reading, first_report],
    )
    assert page.evaluate("window.__not_reloaded") is True
    assert navigations == []


def test_overview_at_phone_width(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page(PHONE)
    sign_in(opened.page, console_stack.monitoring.url)
    expect(opened.page.locator("tr[data-unit]").first).to_be_visible()
    expect(opened.page.locator("[data-figure='reporting']")).not_to_have_text("—")
    # nothing wider than the screen but the scrollable table
    width = opened.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    screenshot(opened.page, "overview")


def test_the_key_is_in_no_url_and_no_log(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    sign_in(opened.page, console_stack.monitoring.url)
    opened.page.get_by_role("link", name="MP-0001").click()
    expect(opened.page.get_by_role("heading", name="MP-0001")).to_be_visible()
    assert opened.watch.urls, "no request recorded"
    assert not [u for u in opened.watch.urls if OPERATOR_SECRET in u]
    assert OPERATOR_SECRET not in console_stack.logs()
