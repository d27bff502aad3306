"""SQL of the site roll-up (each site's units, energy, power and active alerts) and of a
site's history in 1-minute buckets."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from db.monitoring import Conn

# Power counts only the units still reporting (a silent unit's last power is not flowing);
# energy counts every unit's last SOC. Alerts: active and not shelved.
SITES = """
WITH mp AS (
    SELECT site_id, last_soc_percent, last_power_kw, coalesce(capacity_kwh, $2) AS capacity_kwh,
           last_seen >= now() - make_interval(secs => $1) AS reporting
    FROM units WHERE kind = 'megapack' AND site_id IS NOT NULL
), sites AS (
    SELECT site_id, count(*) AS units, count(*) FILTER (WHERE reporting) AS reporting,
           sum(last_soc_percent / 100 * capacity_kwh) / 1000 AS energy_stored_mwh,
           sum(capacity_kwh) / 1000 AS capacity_mwh,
           coalesce(sum(last_power_kw) FILTER (WHERE reporting), 0) / 1000 AS net_power_mw,
           coalesce(sum(-last_power_kw) FILTER (WHERE reporting AND last_power_kw < 0), 0)
               / 1000 AS charging_mw,
           coalesce(sum(last_power_kw) FILTER (WHERE reporting AND last_power_kw > 0), 0)
               / 1000 AS discharging_mw,
           min(last_soc_percent) AS soc_min_percent, avg(last_soc_percent) AS soc_mean_percent,
           max(last_soc_percent) AS soc_max_percent
    FROM mp GROUP BY site_id
), alerting AS (
    SELECT site_id,
           count(*) FILTER (WHERE severity = 'critical') AS critical,
           count(*) FILTER (WHERE severity = 'warning') AS warning,
           count(*) FILTER (WHERE severity = 'info') AS info,
           count(*) FILTER (WHERE state = 'active_unacknowledged') AS unacknowledged,
           max(array_position(ARRAY['info', 'warning', 'critical'], severity)) AS worst_rank
    FROM alerts
    WHERE state IN ('active_unacknowledged', 'active_acknowledged') AND site_id IS NOT NULL
      AND NOT coalesce(shelved_until > now(), false)
    GROUP BY site_id
)
SELECT s.*, coalesce(a.critical, 0) AS critical, coalesce(a.warning, 0) AS warning,
       coalesce(a.info, 0) AS info, coalesce(a.unacknowledged, 0) AS unacknowledged,
       (ARRAY['info', 'warning', 'critical'])[a.worst_rank] AS worst_severity
FROM sites s LEFT JOIN alerting a USING (site_id)
ORDER BY s.site_id
"""


async def sites(conn: Conn, *, stale_after_s: float, capacity_kwh: float) -> list[asyncpg.Record]:
    """Every site with its roll-up, in id order."""
    return await conn.fetch(SITES, stale_after_s, capacity_kwh)


# A site's history: each unit's 1-minute buckets, then summed per minute over the site's
# Megapacks (as the `units` table has them now). The buckets come from the continuous aggregate
# on TimescaleDB; on PostgreSQL, where `megapack_telemetry_1m` is a plain view whose `bucket`
# no index serves, from the raw rows by the same date_bin, read by (unit_id, time).
_BUCKETS_AGGREGATE = """
SELECT bucket, unit_id, soc_percent_avg, soc_percent_min, soc_percent_max, power_kw_avg,
       temperature_c_max
FROM megapack_telemetry_1m
WHERE unit_id = ANY(ARRAY(SELECT unit_id FROM site_units)) AND bucket >= $2 AND bucket < $3"""
_BUCKETS_RAW = """
SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
       unit_id, avg(soc_percent) AS soc_percent_avg, min(soc_percent) AS soc_percent_min,
       max(soc_percent) AS soc_percent_max, avg(power_kw) AS power_kw_avg,
       max(temperature_c) AS temperature_c_max
FROM megapack_telemetry
WHERE unit_id = ANY(ARRAY(SELECT unit_id FROM site_units)) AND time >= $2 AND time < $3
GROUP BY 1, unit_id"""
_SITE_UNITS = """site_units AS (
    SELECT unit_id, coalesce(capacity_kwh, $4) AS capacity_kwh
    FROM units WHERE kind = 'megapack' AND site_id = $1)"""
_ROLL_UP = """
SELECT bucket, count(*) AS units,
       sum(power_kw_avg) / 1000 AS net_power_mw,
       coalesce(sum(-power_kw_avg) FILTER (WHERE power_kw_avg < 0), 0) / 1000 AS charging_mw,
       coalesce(sum(power_kw_avg) FILTER (WHERE power_kw_avg > 0), 0) / 1000 AS discharging_mw,
       sum(soc_percent_avg / 100 * capacity_kwh) / 1000 AS energy_stored_mwh,
       avg(soc_percent_avg) AS soc_mean_percent, min(soc_percent_min) AS soc_min_percent,
       max(soc_percent_max) AS soc_max_percent, max(temperature_c_max) AS temperature_max_c
FROM buckets JOIN site_units USING (unit_id)
GROUP BY bucket ORDER BY bucket LIMIT $5"""
SITE_HISTORY = {
    "raw": f"WITH {_SITE_UNITS}, buckets AS ({_BUCKETS_RAW}) {_ROLL_UP}",
    "aggregate": f"WITH {_SITE_UNITS}, buckets AS ({_BUCKETS_AGGREGATE}) {_ROLL_UP}",
}


async def site_units(conn: Conn, *, site_id: str) -> int:
    """How many Megapacks the site has."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM units WHERE kind = 'megapack' AND site_id = $1", site_id
    )
    return count


async def site_history(
    conn: Conn, *, site_id: str, start: datetime, end: datetime, capacity_kwh: float, limit: int
) -> list[asyncpg.Record]:
    """The site's 1-minute buckets in [start, end) (minute-aligned), oldest first."""
    plain_view = await conn.fetchval(
        "SELECT relkind = 'v' FROM pg_class WHERE oid = to_regclass('megapack_telemetry_1m')"
    )
    sql = SITE_HISTORY["raw" if plain_view else "aggregate"]
    return await conn.fetch(sql, site_id, start, end, capacity_kwh, limit)
