"""KPI pure logic: the RTE formula, bucket alignment, range checks, gaps split by bucket, and
the migration's accounting function being the same on both flavours."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest

from db.kpis import STATES
from db.migrate import MIGRATIONS
from monitoring_service.kpi_figures import ceil_to, floor_to, rte_percent, split_gaps
from monitoring_service.kpi_handler import KpiError, KpiQuery, checked_range

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def test_rte_corrects_for_the_energy_left_stored() -> None:
    # RTE = η², η the one-way efficiency that balances the books: in × η − out / η = ΔE.
    for charged, discharged, stored in ((500.0, 400.0, 40.0), (500.0, 400.0, -60.0)):
        rte = rte_percent(charged, discharged, stored)
        assert rte is not None
        eta = math.sqrt(rte / 100)
        assert charged * eta - discharged / eta == pytest.approx(stored)
    # 40 kWh still stored is not counted as lost; 60 taken from the store came out too.
    assert rte_percent(500.0, 400.0, 40.0) == pytest.approx(87.48, abs=0.01)
    assert rte_percent(500.0, 400.0, -60.0) == pytest.approx(69.96, abs=0.01)
    assert rte_percent(920.0, 846.4, 0.0) == pytest.approx(92.0)  # a full cycle: out / in
    # A 92 % unit (η = √0.92 each way) that ended the window 1,000 kWh fuller reads 92 %.
    eta = math.sqrt(0.92)
    assert rte_percent(2000.0, (2000.0 * eta - 1000.0) * eta, 1000.0) == pytest.approx(92.0)
    assert rte_percent(500.0, 0.0, 40.0) == 0.0  # nothing came out
    assert rte_percent(0.0, 400.0, -420.0) is None  # nothing charged
    assert rte_percent(100.0, 0.0, 100.0) is None  # all of it still stored: nothing cycled


def test_buckets_are_utc_hours_and_days() -> None:
    moment = datetime(2026, 11, 2, 1, 10, tzinfo=UTC) + timedelta(hours=1)  # 02:10Z
    assert floor_to(moment, "1h") == datetime(2026, 11, 2, 2, tzinfo=UTC)
    assert ceil_to(moment, "1h") == datetime(2026, 11, 2, 3, tzinfo=UTC)
    assert floor_to(moment, "1d") == datetime(2026, 11, 2, tzinfo=UTC)
    assert ceil_to(moment, "1d") == datetime(2026, 11, 3, tzinfo=UTC)
    aligned = datetime(2026, 11, 2, tzinfo=UTC)
    assert ceil_to(aligned, "1d") == aligned


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (KpiQuery("galaxy", "X", None, None), "unknown scope 'galaxy'"),
        (KpiQuery("site", "X", None, None, "5m"), "unknown bucket '5m'"),
        (KpiQuery("site", None, None, None), "`id` is required"),
        (KpiQuery("fleet", "X", None, None), "not taken with scope=fleet"),
        (KpiQuery("site", "X", NOW, NOW), "`from` must be before `to`"),
        (KpiQuery("site", "X", datetime(1, 1, 1, tzinfo=UTC), NOW), "`from` out of range"),
        (KpiQuery("site", "X", None, datetime(9999, 12, 31, tzinfo=UTC)), "`to` out of range"),
        (KpiQuery("site", "X", NOW - timedelta(days=32), NOW, "1h"), "at most 31 days"),
        (KpiQuery("site", "X", NOW - timedelta(days=367), NOW, "1d"), "at most 366 days"),
    ],
)
def test_bad_queries_are_named(query: KpiQuery, message: str) -> None:
    with pytest.raises(KpiError, match=re.escape(message)) as raised:
        checked_range(query, now=NOW)
    assert raised.value.status == 422


def test_default_ranges_end_now() -> None:
    _, _, start, end = checked_range(KpiQuery("fleet", None, None, None, "1d"), now=NOW)
    assert (start, end) == (datetime(2026, 10, 21, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    _, _, start, end = checked_range(KpiQuery("unit", "U", None, None, "1h"), now=NOW)
    assert end - start == timedelta(hours=25)  # 12:30 back a day, widened to whole hours


def test_a_gap_is_clipped_to_every_bucket_it_overlaps() -> None:
    day = datetime(2026, 11, 2, tzinfo=UTC)
    starts = [day + timedelta(hours=k) for k in range(3)]
    rows = [
        {
            "unit_id": "U",
            "gap_start": day + timedelta(minutes=50),
            "gap_end": day + timedelta(hours=2, minutes=5),
        }
    ]
    split = split_gaps(rows, starts=starts, span=timedelta(hours=1))
    assert [[gap.duration_s for gap in split[start]] for start in starts] == [
        [600.0],
        [3600.0],
        [300.0],
    ]


def test_accounting_function_is_the_same_on_both_flavours() -> None:
    postgres = (MIGRATIONS / "0010_kpis.postgres.sql").read_text()
    timescale = (MIGRATIONS / "0010_kpis.timescale.sql").read_text()

    def function(sql: str) -> str:
        return sql[sql.index("CREATE OR REPLACE FUNCTION kpi_step") : sql.index("SFUNC")]

    assert function(postgres) == function(timescale)
    codes = re.search(r"ARRAY\[('IDLE'.*?)\], state\)", function(postgres), re.DOTALL)
    assert codes is not None
    assert tuple(re.findall(r"'([A-Z]+)'", codes.group(1))) == STATES
