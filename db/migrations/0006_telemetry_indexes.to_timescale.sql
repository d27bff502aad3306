-- Converting a plain-PostgreSQL database (db/convert.py): the BRIN indexes of the plain
-- flavor give way to the time index the timescale flavor keeps (as 0001 made it).
DROP INDEX IF EXISTS megapack_telemetry_time_brin;
DROP INDEX IF EXISTS ev_telemetry_time_brin;
CREATE INDEX IF NOT EXISTS megapack_telemetry_time_idx ON megapack_telemetry (time DESC);
CREATE INDEX IF NOT EXISTS ev_telemetry_time_idx ON ev_telemetry (time DESC);
