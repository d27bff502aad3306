"""SQL of the site roll-up: each site's units, energy, power and active alerts."""

from __future__ import annotations

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
