-- Energy accounting (KPIs), plain PostgreSQL: the per-hour accounting aggregate; the KPI
-- queries (db/kpis.py) apply it to the raw rows.
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
