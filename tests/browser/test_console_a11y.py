"""Accessibility basics: every control labelled, the views reachable from the keyboard."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Opened
from tests.browser.console import sign_in
from tests.browser.stack import ConsoleStack
from tests.support.stack import OPERATOR_SECRET

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => !el.closest('[hidden]'))
  .filter((el) => {
    const text = (el.labels && [...el.labels].map((l) => l.textContent).join(' ').trim())
      || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent.trim());
    return !text;
  })
  .map((el) => el.outerHTML.slice(0, 120))"""


@pytest.mark.parametrize(
    "view", ["#/", "#/units/MP-0001", "#/alerts", "#/evs", "#/kpis", "#/sites"]
)
def test_every_control_has_a_label(
    view: str, console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    sign_in(page, console_stack.monitoring.url)
    page.evaluate(f"location.hash = {view!r}")
    expect(page.locator("#view[data-loaded]")).to_be_attached()
    assert page.evaluate(UNLABELLED) == []


def test_the_console_works_from_the_keyboard(
    console_stack: ConsoleStack, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    page.goto(f"{console_stack.monitoring.url}/")
    expect(page.get_by_label("Operator key")).to_be_focused()
    page.keyboard.type(OPERATOR_SECRET)
    page.keyboard.press("Enter")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(page.locator("main")).to_be_focused()  # signed in: on the content
    for _ in range(20):  # back into the header, to the Alerts view
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.textContent") == "Alerts":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    # a state is carried by text, not colour alone
    expect(page.locator("tr[data-alert] .badge").first).to_have_text(
        re.compile(r"(critical|warning|info)")
    )
