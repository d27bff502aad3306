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
STATE_ARRAY = "ARRAY[" + ", ".join(f"'{state}'" for state in STATES) + "]"
Source = Literal["continuous_aggregate", "raw"]

# The same hourly partials as `kpi_hour` (the layout of migration 0010), from the raw rows by
# window functions: several times cheaper than the PL/pgSQL aggregate row by row, and a second,
# independent statement of the accounting (tests/integration/test_kpis.py compares the two).
# An interval is inside the hour when the next reading falls in the same hour.
# $1 unit ids, $2 first hour, $3 end of the rows read (see `_window`), $4 stale_after_s.
_RAW_PARTIALS = f"""
SELECT bucket, unit_id,
       (ARRAY[first_r[1], first_r[2], first_r[3], first_r[4],
              last_r[1], last_r[2], last_r[3], last_r[4], charged, discharged,
              soh_first[2], soh_last[2], st0, st1, st2, st3, st4, st5, st6, gap_count]
        || coalesce(gap_pairs, '{{}}'::float8[])) AS s,
       readings, power_min_kw, power_max_kw
FROM (
SELECT bucket, unit_id,
       min(ARRAY[t, p, code, soc]) AS first_r, max(ARRAY[t, p, code, soc]) AS last_r,
       coalesce(sum(-p * dt) FILTER (WHERE inner_ok AND p < 0), 0) AS charged,
       coalesce(sum(p * dt) FILTER (WHERE inner_ok AND p > 0), 0) AS discharged,
       min(ARRAY[t, soh]) FILTER (WHERE soh IS NOT NULL) AS soh_first,
       max(ARRAY[t, soh]) FILTER (WHERE soh IS NOT NULL) AS soh_last,
       coalesce(sum(dt) FILTER (WHERE inner_ok AND code = 0), 0) AS st0,
       coalesce(sum(dt) FILTER (WHERE inner_ok AND code = 1), 0) AS st1,
       coalesce(sum(dt) FILTER (WHERE inner_ok AND code = 2), 0) AS st2,
       coalesce(sum(dt) FILTER (WHERE inner_ok AND code = 3), 0) AS st3,
       coalesce(sum(dt) FILTER (WHERE inner_ok AND code = 4), 0) AS st4,
       coalesce(sum(dt) FILTER (WHERE inner_ok AND code = 5), 0) AS st5,
       coalesce(sum(dt) FILTER (WHERE inner_ok AND code = 6), 0) AS st6,
       count(*) FILTER (WHERE inner_gap)::float8 AS gap_count,
       (SELECT array_agg(x)
        FROM unnest(array_agg(ARRAY[t, t + dt] ORDER BY t) FILTER (WHERE inner_gap)) AS x)
           AS gap_pairs,
       count(*) AS readings, min(p) AS power_min_kw, max(p) AS power_max_kw
FROM (
SELECT unit_id, bucket, t, p, code, soc, soh, dt,
       same_hour AND dt <= $4 AS inner_ok, same_hour AND dt > $4 AS inner_gap
FROM (
SELECT unit_id, date_bin(INTERVAL '1 hour', time, {ORIGIN}) AS bucket,
       date_part('epoch', time) AS t, power_kw AS p,
       coalesce(array_position({STATE_ARRAY}, state), 7) - 1.0 AS code,
       soc_percent AS soc, soh_percent AS soh,
       date_part('epoch', lead(time) OVER w - time) AS dt,
       date_bin(INTERVAL '1 hour', lead(time) OVER w, {ORIGIN})
           = date_bin(INTERVAL '1 hour', time, {ORIGIN}) AS same_hour
FROM megapack_telemetry
WHERE unit_id = ANY($1::text[]) AND time >= $2 AND time < $3
WINDOW w AS (PARTITION BY unit_id ORDER BY time)) AS rows_) AS marked
GROUP BY bucket, unit_id) AS hours"""  # noqa: S608 (fixed text)

_AGGREGATE_PARTIALS = """
SELECT bucket, unit_id, s, readings, power_min_kw, power_max_kw
FROM megapack_kpi_1h
WHERE unit_id = ANY($1::text[]) AND bucket >= $2 AND bucket < $3"""

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


# $1 start, $2 end (bucket-aligned), $3 stale_after_s, $4 output bucket, $5 default capacity
# (kWh).
# tail_s: the part, inside this hour, of the interval from its last reading to the next one;
# head_s: the part, inside this hour, of the interval from the previous hour's last reading.
_FIGURES = f"""
WITH partials AS (SELECT * FROM kpi_partials),
neighbours AS ({_NEIGHBOURS}),
edges AS (
SELECT unit_id, bucket, s, readings, power_min_kw, power_max_kw, prev_code,
       date_bin($4::interval, bucket, {ORIGIN}) AS out_bucket,
       coalesce(prev_power, 0) AS prev_power,
       CASE WHEN next_first - s[5] <= $3 THEN least(next_first, b0 + 3600) - s[5] ELSE 0 END
           AS tail_s,
       CASE WHEN s[1] - prev_last <= $3 THEN s[1] - greatest(prev_last, b0) ELSE 0 END AS head_s,
       CASE WHEN next_first - s[5] <= $3 THEN next_soc ELSE s[8] END AS end_soc
FROM neighbours WHERE bucket >= $1 AND bucket < $2),
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
       sum((soc_end * coalesce(soh_last, 100.0) - soc_start * coalesce(soh_first, 100.0))
           / 10000.0 * coalesce(u.capacity_kwh, $5)) AS stored_change_kwh,
       {", ".join(f"sum(state_{code}) AS state_{code}" for code in range(len(STATES)))},
       sum(readings)::bigint AS readings, min(power_min_kw) AS power_min_kw,
       max(power_max_kw) AS power_max_kw, avg(soh_first) AS soh_first, avg(soh_last) AS soh_last
FROM per_unit JOIN units u USING (unit_id)
GROUP BY out_bucket ORDER BY out_bucket"""  # noqa: S608 (fixed text)

# Silences longer than $4 seconds, clipped to [$2, $3) ($3: the end of the range or now);
# before a unit's first reading and after its last one they reach the rows' window ($5, $6,
# or now: $7).
_GAPS = f"""
WITH partials AS (SELECT * FROM kpi_partials),
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
) -> list[asyncpg.Record]:
    """The Megapacks of a unit / site / fleet scope, with their capacity (kWh)."""
    return await conn.fetch(
        """SELECT unit_id, coalesce(capacity_kwh, $3) AS capacity_kwh FROM units
           WHERE kind = 'megapack'
             AND ($1 <> 'unit' OR unit_id = $2) AND ($1 <> 'site' OR site_id = $2)
           ORDER BY unit_id""",
        scope,
        scope_id,
        default_capacity_kwh,
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


PARTIALS_TABLE = """
CREATE TEMP TABLE kpi_partials (bucket timestamptz, unit_id text, s float8[], readings bigint,
    power_min_kw float8, power_max_kw float8) ON COMMIT DROP"""


async def read_kpis(
    conn: Conn,
    *,
    unit_ids: list[str],
    start: datetime,
    end: datetime,
    until: datetime,
    now: datetime,
    bucket: timedelta,
    stale_after_s: float,
    default_capacity_kwh: float,
    source: Source,
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """Sums per output bucket (only buckets holding readings) over the units given, and their
    silences over `stale_after_s`, clipped to [start, until).

    The hourly partials are read once into a temporary table for both. JIT is off: the
    planner overestimates these rows and would spend seconds compiling."""
    first, last = _window(start, end, stale_after_s)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; {PARTIALS_TABLE}")
        if source == "continuous_aggregate":
            await conn.execute(
                f"INSERT INTO kpi_partials {_AGGREGATE_PARTIALS}", unit_ids, first, last
            )
        else:
            await conn.execute(
                f"INSERT INTO kpi_partials {_RAW_PARTIALS}", unit_ids, first, last, stale_after_s
            )
        sums = await conn.fetch(_FIGURES, start, end, stale_after_s, bucket, default_capacity_kwh)
        gaps = await conn.fetch(_GAPS, unit_ids, start, until, stale_after_s, first, last, now)
    return sums, gaps
