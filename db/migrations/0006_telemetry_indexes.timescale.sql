-- TimescaleDB: nothing reads telemetry by site (site views come from `units` and the 1-minute
-- aggregates), so that index is only upkeep on every stored reading. The time index stays:
-- each chunk is small and TimescaleDB plans recent-window queries with it.
DROP INDEX IF EXISTS megapack_telemetry_site_time_idx;
