-- Energy accounting (KPIs), TimescaleDB: the per-hour accounting aggregate (the same as on
-- PostgreSQL) and an hourly continuous aggregate of it, refreshed by a policy; the newest
-- hour is computed from the raw rows at query time (real-time aggregate).
-- KPI accounting of one unit's readings in time order (the state of the `kpi_hour` aggregate).
-- Left-point rule: a reading's power and state hold until the next reading, when that comes
-- at most `stale_after_s` later; a longer silence is a gap (nothing integrated over it).
-- State layout (float8[], 1-based): 1 first epoch, 2 first power_kw, 3 first state code,
-- 4 first soc, 5 last epoch, 6 last power_kw, 7 last state code, 8 last soc, 9 charged kW·s,
-- 10 discharged kW·s (kWh × 3600, so sums of whole numbers stay exact), 11 first soh,
-- 12 last soh, 13..19 seconds in state code 0..6 (IDLE CHARGING DISCHARGING STANDBY FAULT
-- MAINTENANCE OFFLINE), 20 gaps, 21.. gap (start, end) pairs.
CREATE OR REPLACE FUNCTION kpi_step(
    s float8[], at timestamptz, power_kw float8, state text, soc float8, soh float8,
    stale_after_s float8
) RETURNS float8[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    t float8 := extract(epoch FROM at);
    code int := coalesce(array_position(ARRAY['IDLE', 'CHARGING', 'DISCHARGING', 'STANDBY',
        'FAULT', 'MAINTENANCE', 'OFFLINE'], state), 7) - 1;
    dt float8;
BEGIN
    IF s IS NULL THEN
        RETURN ARRAY[t, power_kw, code, soc, t, power_kw, code, soc, 0, 0, soh, soh,
                     0, 0, 0, 0, 0, 0, 0, 0];
    END IF;
    dt := t - s[5];
    IF dt <= stale_after_s THEN
        IF s[6] < 0 THEN
            s[9] := s[9] - s[6] * dt;
        ELSIF s[6] > 0 THEN
            s[10] := s[10] + s[6] * dt;
        END IF;
        s[13 + s[7]::int] := s[13 + s[7]::int] + dt;
    ELSE
        s[20] := s[20] + 1;
        s := s || ARRAY[s[5], t];
    END IF;
    s[5] := t;
    s[6] := power_kw;
    s[7] := code;
    s[8] := soc;
    IF soh IS NOT NULL THEN
        s[12] := soh;
        s[11] := coalesce(s[11], soh);
    END IF;
    RETURN s;
END
$$;
CREATE OR REPLACE AGGREGATE kpi_hour(timestamptz, float8, text, float8, float8, float8) (
    SFUNC = kpi_step, STYPE = float8[]
);
-- The gap threshold is fixed in the aggregate (STALE_AFTER_S's default); db/kpis.py reads the
-- raw rows instead when STALE_AFTER_S differs.
CREATE OR REPLACE FUNCTION kpi_cagg_stale_after_s() RETURNS float8
    LANGUAGE sql IMMUTABLE AS 'SELECT 30.0::float8';
CREATE MATERIALIZED VIEW IF NOT EXISTS megapack_kpi_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket,
       unit_id,
       kpi_hour(time, power_kw, state, soc_percent, soh_percent, 30.0::float8 ORDER BY time) AS s,
       count(*) AS readings,
       min(power_kw) AS power_min_kw,
       max(power_kw) AS power_max_kw
FROM megapack_telemetry
GROUP BY bucket, unit_id
WITH NO DATA;
-- start_offset NULL: replayed history (SIM_START) and late readings of any age are refreshed.
SELECT add_continuous_aggregate_policy('megapack_kpi_1h', start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '10 minutes', if_not_exists => TRUE);
