"""Helpers of the console's browser tests: signing in, reading figures off the screen."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import Opened
from tests.browser.stack import ConsoleStack
from tests.support.stack import DEVICE_SECRET, OPERATOR_SECRET

OPS = {"X-API-Key": OPERATOR_SECRET}


def sign_in(page: Page, url: str, key: str = OPERATOR_SECRET) -> None:
    """Open the console and sign in with `key` (the way an operator does: type, Enter)."""
    page.goto(f"{url}/")
    started = "() => !document.getElementById('signin').hidden"
    try:
        page.wait_for_function(started, timeout=30_000)
    except PlaywrightTimeoutError:  # a module dropped by ERR_NETWORK_CHANGED: load it again
        page.reload()
        page.wait_for_function(started)
    page.get_by_label("Operator key").fill(key)
    page.get_by_label("Operator key").press("Enter")
    if key == OPERATOR_SECRET:
        expect(page.get_by_role("navigation", name="Views")).to_be_visible()
        expect(page.locator("#live")).to_have_attribute("data-state", "live")


def go(opened: Opened, stack: ConsoleStack, view: str) -> None:
    """Sign in and open a view from the navigation; return when it has its data."""
    sign_in(opened.page, stack.monitoring.url)
    opened.page.get_by_role("navigation", name="Views").get_by_role("link", name=view).click()
    expect(opened.page.get_by_role("heading", name=view, exact=True)).to_be_visible()
    expect(opened.page.locator("#view[data-loaded]")).to_be_attached()


def api_get(url: str, path: str, **params: Any) -> Any:
    """A monitoring or control API answer, as a test client sees it."""
    response = httpx.get(f"{url}{path}", params=params, headers=OPS, timeout=10)
    response.raise_for_status()
    return response.json()


def fmt(value: float | None, digits: int) -> str:
    """The console's number format (`num` in dom.js)."""
    return "—" if value is None else f"{value:.{digits}f}"


def expected_figures(report: dict[str, Any]) -> dict[str, str]:
    """What the overview must show for a report (independently of the console's code)."""
    sites = report["soc"]["sites"]
    open_alerts = report["faults"]["open_alerts"]
    return {
        "reporting": str(report["units"]["reporting"]),
        "stale": str(report["units"]["stale"]),
        "total": str(report["units"]["total"]),
        "soc_mean": fmt(report["soc"]["mean_percent"], 1),
        "charging_mw": fmt(sum(site["charging_mw"] for site in sites), 2),
        "discharging_mw": fmt(sum(site["discharging_mw"] for site in sites), 2),
        "stored_mwh": fmt(sum(site["energy_stored_mwh"] for site in sites), 2),
        "alerts_critical": str(open_alerts.get("critical", 0)),
        "alerts_warning": str(open_alerts.get("warning", 0)),
        "in_fault": str(report["faults"]["units_in_fault"]),
        "evs_charging": str(report["evs"]["charging"]),
        "evs_low": str(report["evs"]["low_battery"]),
        "evs_critical": str(report["evs"]["critical_battery"]),
    }


def screen_figures(page: Page) -> dict[str, str]:
    """Every figure on the overview, and the report time it belongs to, read at one instant."""
    figures: dict[str, str] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-figure]')].map(
            (el) => [el.dataset.figure, el.dataset.at || el.textContent]))"""
    )
    return figures


def post_history(gateway_url: str, *, unit: dict[str, Any], start: datetime) -> int:
    """An hour of a unit's readings from `start`, every 10 s, through the gateway: half an hour
    charging at 500 kW, then discharging at 400 kW. Returns how many."""
    readings = []
    for step in range(360):
        charging = step < 180
        power_kw = -500.0 if charging else 400.0
        readings.append(
            {
                "unit_id": unit["unit_id"], "site_id": unit["site_id"],
                "timestamp": (start + timedelta(seconds=10 * step)).isoformat(),
                "soc_percent": 40 + step / 36 if charging else 45 - (step - 180) / 45,
                "power_kw": power_kw, "voltage_v": 800.0, "current_a": power_kw / 0.8,
                "temperature_c": 25.0, "state": "CHARGING" if charging else "DISCHARGING",
            }
        )  # fmt: skip
    answer = httpx.post(
        f"{gateway_url}/v1/telemetry/megapack",
        json={"readings": readings},
        headers={"X-API-Key": DEVICE_SECRET},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    return len(readings)


def local_input(page: Page, moment: datetime) -> str:
    """A `datetime-local` input's value for `moment`, in the browser's time zone."""
    value: str = page.evaluate(
        """(iso) => { const d = new Date(iso);
            return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); }""",
        moment.isoformat(),
    )
    return value
