"""The console in Chromium against the bench's 10,000 units: how long until a view is drawn."""

from __future__ import annotations

import shutil
import time
from typing import Any

RUNS = 3
# Functions, not strings: the page's CSP forbids evaluating strings.
OVERVIEW_DRAWN = """(rows) => document.querySelectorAll('tr[data-unit]').length === rows
    && (document.querySelector('[data-figure=reporting]')?.textContent ?? '—') !== '—'"""
PAGE_TURNED = """(first) => { const row = document.querySelector('tr[data-unit]');
    return row !== null && row.dataset.unit !== first; }"""
SITES_DRAWN = """(sites) => document.querySelectorAll('tr[data-site]').length === sites
    && document.querySelectorAll('[data-chart-site] figure[data-points]').length === 3"""


def _best(runs: list[float]) -> dict[str, Any]:
    return {"best_ms": round(min(runs)), "runs_ms": [round(r) for r in runs]}


def browser_views(url: str, *, key: str, page_rows: int, sites: int) -> dict[str, Any]:
    """From opening `/` (signed in) to the overview's figures and first page of units on
    screen; from "Next →" to the next page; from the Sites link to every site and its charts.
    Best of three each."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return {"skipped": "no chromium"}
    from playwright.sync_api import sync_playwright

    timings: dict[str, list[float]] = {"overview": [], "next_page": [], "sites": []}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.add_init_script(f"sessionStorage.setItem('megapack.operatorKey', {key!r})")
        for _ in range(RUNS):
            started = time.perf_counter()
            page.goto(f"{url}/")
            page.wait_for_function(OVERVIEW_DRAWN, arg=page_rows, timeout=30_000)
            timings["overview"].append((time.perf_counter() - started) * 1000)
            first = page.locator("tr[data-unit]").first.get_attribute("data-unit")
            started = time.perf_counter()
            page.get_by_role("button", name="Next →").click()
            page.wait_for_function(PAGE_TURNED, arg=first, timeout=30_000)
            timings["next_page"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            page.get_by_role("link", name="Sites").click()
            page.wait_for_function(SITES_DRAWN, arg=sites, timeout=30_000)
            timings["sites"].append((time.perf_counter() - started) * 1000)
        browser.close()
    return {f"{name}_drawn": _best(runs) for name, runs in timings.items()}
