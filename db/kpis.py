"""SQL of the energy accounting (KPIs): the units of a scope, per-bucket sums and gaps.

Both flavours start from hourly partials of the `kpi_hour` aggregate (migration 0010): on
TimescaleDB read from the continuous aggregate `megapack_kpi_1h`, on PostgreSQL computed from
the raw rows by the same aggregate. The interval between the last reading of one hour and the
first of the next is accounted here, at query time, from the partials (window functions are
not allowed in a continuous aggregate), split at the hour boundary.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import asyncpg

if TYPE_CHECKING:
    from db.monitoring import Conn

# The order of the state codes in `kpi_step` (migration 0010): code k is STATES[k].
STATES = ("IDLE", "CHARGING", "DISCHARGING", "STANDBY", "FAULT", "MAINTENANCE", "OFFLINE")
ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
Source = Literal["continuous_aggregate", "raw"]

# $1 unit ids, $4 stale_after_s, $5 first hour, $6 end of the rows read (see `_window`).
_RAW_PARTIALS = f"""
SELECT date_bin(INTERVAL '1 hour', time, {ORIGIN}) AS bucket, unit_id,
       kpi_hour(time, power_kw, state, soc_percent, soh_percent, $4::float8 ORDER BY time) AS s,
       count(*) AS readings, min(power_kw) AS power_min_kw, max(power_kw) AS power_max_kw
FROM megapack_telemetry
WHERE unit_id = ANY($1::text[]) AND time >= $5 AND time < $6
GROUP BY 1, 2"""  # noqa: S608 (fixed text)

_AGGREGATE_PARTIALS = """
SELECT bucket, unit_id, s, readings, power_min_kw, power_max_kw
FROM megapack_kpi_1h
WHERE unit_id = ANY($1::text[]) AND bucket >= $5 AND bucket < $6"""

# Each partial with its neighbours of the same unit (the readings just before and after it).
_NEIGHBOURS = """
SELECT unit_id, bucket, s, readings, power_min_kw, power_max_kw,
       extract(epoch FROM bucket)::float8 AS b0,
       lead(s[1]) OVER w AS next_first, lead(s[4]) OVER w AS next_soc,
       lag(s[5]) OVER w AS prev_last, lag(s[6]) OVER w AS prev_power, lag(s[7]) OVER w AS prev_code
FROM partials WINDOW w AS (PARTITION BY unit_id ORDER BY bucket)"""


def _state_sums() -> str:
    return ",\n       ".join(
        f"sum(s[{13 + code}] + CASE WHEN s[7] = {code} THEN tail_s ELSE 0 END"
        f" + CASE WHEN prev_code = {code} THEN head_s ELSE 0 END) AS state_{code}"
        for code in range(len(STATES))
    )


# $2 start, $3 end (bucket-aligned), $7 output bucket, $8 default capacity (kWh).
# tail_s: the part, inside this hour, of the interval from its last reading to the next one;
# head_s: the part, inside this hour, of the interval from the previous hour's last reading.
_FIGURES = f"""
WITH partials AS ({{partials}}),
neighbours AS ({_NEIGHBOURS}),
edges AS (
SELECT unit_id, bucket, s, readings, power_min_kw, power_max_kw, prev_code,
       date_bin($7::interval, bucket, {ORIGIN}) AS out_bucket,
       coalesce(prev_power, 0) AS prev_power,
       CASE WHEN next_first - s[5] <= $4 THEN least(next_first, b0 + 3600) - s[5] ELSE 0 END
           AS tail_s,
       CASE WHEN s[1] - prev_last <= $4 THEN s[1] - greatest(prev_last, b0) ELSE 0 END AS head_s,
       CASE WHEN next_first - s[5] <= $4 THEN next_soc ELSE s[8] END AS end_soc
FROM neighbours WHERE bucket >= $2 AND bucket < $3),
per_unit AS (
SELECT out_bucket, unit_id,
       sum(s[9] + tail_s * greatest(-s[6], 0) + head_s * greatest(-prev_power, 0)) / 3600.0
           AS charged_kwh,
       sum(s[10] + tail_s * greatest(s[6], 0) + head_s * greatest(prev_power, 0)) / 3600.0
           AS discharged_kwh,
       {_state_sums()},
       sum(readings) AS readings, min(power_min_kw) AS power_min_kw,
       max(power_max_kw) AS power_max_kw,
       (array_agg(s[4] ORDER BY bucket))[1] AS soc_start,
       (array_agg(end_soc ORDER BY bucket DESC))[1] AS soc_end,
       (array_agg(s[11] ORDER BY bucket) FILTER (WHERE s[11] IS NOT NULL))[1] AS soh_first,
       (array_agg(s[12] ORDER BY bucket DESC) FILTER (WHERE s[12] IS NOT NULL))[1] AS soh_last
FROM edges GROUP BY out_bucket, unit_id)
SELECT out_bucket AS bucket, count(*) AS units_reporting,
       sum(charged_kwh) AS charged_kwh, sum(discharged_kwh) AS discharged_kwh,
       sum((soc_end - soc_start) / 100.0 * coalesce(u.capacity_kwh, $8)) AS stored_change_kwh,
       {", ".join(f"sum(state_{code}) AS state_{code}" for code in range(len(STATES)))},
       sum(readings)::bigint AS readings, min(power_min_kw) AS power_min_kw,
       max(power_max_kw) AS power_max_kw, avg(soh_first) AS soh_first, avg(soh_last) AS soh_last
FROM per_unit JOIN units u USING (unit_id)
GROUP BY out_bucket ORDER BY out_bucket"""  # noqa: S608 (fixed text)

# Silences longer than $4 seconds, clipped to [$2, $3) ($3: the end of the range or now);
# before a unit's first reading and after its last one they reach the rows' window ($5, $6,
# or now: $7).
_GAPS = f"""
WITH partials AS ({{partials}}),
neighbours AS ({_NEIGHBOURS}),
bounds AS (
SELECT extract(epoch FROM $2::timestamptz)::float8 AS low,
       extract(epoch FROM $3::timestamptz)::float8 AS high,
       extract(epoch FROM $5::timestamptz)::float8 AS read_from,
       extract(epoch FROM least($6::timestamptz, $7::timestamptz))::float8 AS read_to),
silences AS (
SELECT unit_id, s[i] AS gap_start, s[i + 1] AS gap_end
FROM neighbours, generate_series(21, coalesce(array_length(s, 1), 0) - 1, 2) AS i
UNION ALL
SELECT unit_id, s[5], next_first FROM neighbours WHERE next_first - s[5] > $4
UNION ALL
SELECT unit_id, s[5], read_to FROM neighbours, bounds WHERE next_first IS NULL
UNION ALL
SELECT unit_id, read_from, s[1] FROM neighbours, bounds WHERE prev_last IS NULL
UNION ALL
SELECT id, read_from, read_to FROM unnest($1::text[]) AS id, bounds
WHERE NOT EXISTS (SELECT 1 FROM partials WHERE unit_id = id))
SELECT unit_id, to_timestamp(greatest(gap_start, low)) AS gap_start,
       to_timestamp(least(gap_end, high)) AS gap_end
FROM silences, bounds
WHERE gap_end - gap_start > $4 AND least(gap_end, high) > greatest(gap_start, low)
ORDER BY gap_start, unit_id"""  # noqa: S608 (fixed text)


async def scope_units(
    conn: Conn,
    *,
    scope: str,
    scope_id: str | None,
    default_capacity_kwh: float,
    unit_prefix: str = "",
) -> list[asyncpg.Record]:
    """The Megapacks of a unit / site / fleet scope (ids starting with the prefix), with
    their capacity (kWh)."""
    return await conn.fetch(
        """SELECT unit_id, coalesce(capacity_kwh, $3) AS capacity_kwh FROM units
           WHERE kind = 'megapack' AND starts_with(unit_id, $4)
             AND ($1 <> 'unit' OR unit_id = $2) AND ($1 <> 'site' OR site_id = $2)
           ORDER BY unit_id""",
        scope,
        scope_id,
        default_capacity_kwh,
        unit_prefix,
    )


async def source_for(conn: Conn, *, stale_after_s: float) -> Source:
    """The continuous aggregate when there is one built with this gap threshold, else raw."""
    if await conn.fetchval("SELECT to_regclass('megapack_kpi_1h') IS NULL"):
        return "raw"
    baked: float = await conn.fetchval("SELECT kpi_cagg_stale_after_s()")
    return "continuous_aggregate" if baked == stale_after_s else "raw"


def _window(start: datetime, end: datetime, stale_after_s: float) -> tuple[datetime, datetime]:
    """The rows read: from the hour holding the last reading that can reach into the range,
    to the first one after it that can close its last interval."""
    stale = timedelta(seconds=stale_after_s)
    first = start - stale
    return first.replace(minute=0, second=0, microsecond=0), end + stale


def _partials(source: Source) -> str:
    return _AGGREGATE_PARTIALS if source == "continuous_aggregate" else _RAW_PARTIALS


async def bucket_figures(
    conn: Conn,
    *,
    unit_ids: list[str],
    start: datetime,
    end: datetime,
    bucket: timedelta,
    stale_after_s: float,
    default_capacity_kwh: float,
    source: Source,
) -> list[asyncpg.Record]:
    """Sums per output bucket (only buckets holding readings) over the units given."""
    first, last = _window(start, end, stale_after_s)
    sql = _FIGURES.format(partials=_partials(source))
    return await conn.fetch(
        sql, unit_ids, start, end, stale_after_s, first, last, bucket, default_capacity_kwh
    )


async def gaps(
    conn: Conn,
    *,
    unit_ids: list[str],
    start: datetime,
    end: datetime,
    until: datetime,
    now: datetime,
    stale_after_s: float,
    source: Source,
) -> list[asyncpg.Record]:
    """Silent intervals over `stale_after_s` of each unit, clipped to [start, until)."""
    first, last = _window(start, end, stale_after_s)
    sql = _GAPS.format(partials=_partials(source))
    return await conn.fetch(sql, unit_ids, start, until, stale_after_s, first, last, now)
