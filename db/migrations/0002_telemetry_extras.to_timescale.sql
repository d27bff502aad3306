-- Converting a plain-PostgreSQL database (db/convert.py): the plain views named like the
-- continuous aggregates go first. Re-runnable: an aggregate already made stays.
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['megapack_telemetry_1m', 'ev_telemetry_1m'] LOOP
        IF NOT EXISTS (
            SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = name
        ) THEN
            EXECUTE format('DROP VIEW IF EXISTS %I', name);
        END IF;
    END LOOP;
END
$$;
