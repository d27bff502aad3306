"""The KPI view in a real browser: an hour in the past (sent through the gateway, so it no
longer changes) shows the figures of GET /v1/kpis, and its CSV download is the API's CSV."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import Opened, screenshot
from tests.browser.console import OPS, api_get, go, local_input, post_history
from tests.browser.stack import ConsoleStack

# What the view shows of a bucket, with its decimals (an independent copy of kpis.js's table)
SHOWN = {
    "energy_charged_kwh": 1, "energy_discharged_kwh": 1, "rte_percent": 1,
    "equivalent_full_cycles": 3, "availability_percent": 1, "peak_charge_kw": 0,
    "peak_discharge_kw": 0, "soh_first": 1, "soh_last": 1, "readings_received": 0,
    "readings_expected": 0, "gap_count": 0,
}  # fmt: skip


def stored_history(stack: ConsoleStack, unit_id: str) -> dict[str, str]:
    """Send the hour two days ago and wait until the API counts every reading of it."""
    unit = api_get(stack.monitoring.url, f"/v1/units/{unit_id}")
    start = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    sent = post_history(stack.gateway.url, unit=unit, start=start)
    query = {"scope": "unit", "id": unit_id, "bucket": "1h", "from": start.isoformat(),
             "to": (start + timedelta(hours=1)).isoformat()}  # fmt: skip
    deadline = time.monotonic() + 60
    while (
        api_get(stack.monitoring.url, "/v1/kpis", **query)["items"][0]["readings_received"] < sent
    ):
        assert time.monotonic() < deadline, "the readings were never stored"
        time.sleep(0.2)
    return query


def test_kpis_on_screen_equal_the_api_and_the_csv_download(
    console_stack: ConsoleStack, open_page: Callable[..., Opened], tmp_path: Path
) -> None:
    url = console_stack.monitoring.url
    query = stored_history(console_stack, "MP-0001")
    answer = api_get(url, "/v1/kpis", **query)
    (bucket,) = answer["items"]
    assert bucket["energy_charged_kwh"] == pytest.approx(250, abs=0.01)  # 500 kW for 30 min
    opened = open_page()
    page = opened.page
    go(opened, console_stack, "KPIs")
    page.get_by_label("Scope").select_option("unit")
    page.get_by_label("Site or unit").fill("MP-0001")
    for label, name in (("From", "from"), ("To", "to")):
        moment = datetime.fromisoformat(query[name])
        page.get_by_label(label, exact=True).fill(local_input(page, moment))
    page.get_by_label("Bucket").select_option("1h")
    page.get_by_role("button", name="Show").click()
    row = page.locator(
        f"table[aria-label='KPIs'][data-from='{answer['from']}'] "
        f"tr[data-bucket='{bucket['bucket_start']}']"
    )
    row.wait_for()
    shown = {name: row.locator(f"[data-field='{name}']").inner_text() for name in SHOWN}
    for name, digits in SHOWN.items():
        value = bucket[name]
        if value is None:
            assert shown[name] == "—", name
        else:  # JS rounds a half up, Python to even: equal to the shown precision
            assert abs(float(shown[name]) - value) <= 0.5 * 10**-digits + 1e-9, (name, shown)
    screenshot(page, "kpis")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    saved = tmp_path / "kpis.csv"
    download.value.save_as(saved)
    csv = httpx.get(f"{url}/v1/kpis", params=query, headers={**OPS, "Accept": "text/csv"})
    assert csv.status_code == 200
    assert saved.read_bytes() == csv.content
    assert csv.text.count("\r\n") == 2  # the header and the one bucket
