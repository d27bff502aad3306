-- TimescaleDB: nothing reads telemetry by site (site views come from `units` and the 1-minute
-- aggregates), so that index is only upkeep on every stored reading. The time index stays:
-- each chunk is small and TimescaleDB plans recent-window queries with it. Should a
-- TimescaleDB version refuse index changes on a hypertable with compression enabled, the
-- index stays and the migration still succeeds (it only saves work, it changes no result).
DO $$
BEGIN
    DROP INDEX IF EXISTS megapack_telemetry_site_time_idx;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'megapack_telemetry_site_time_idx kept: %', SQLERRM;
END
$$;
