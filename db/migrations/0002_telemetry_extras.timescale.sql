-- migrate: no-transaction
-- TimescaleDB: hypertables (1-day chunks), compression after 7 days segmented by unit, and
-- 1-minute continuous aggregates (real-time, so the newest minute is included as on
-- PostgreSQL). Retention is applied by `python -m db migrate` from RETENTION_DAYS.
SELECT create_hypertable('megapack_telemetry', 'time', chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('ev_telemetry', 'time', chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE, migrate_data => TRUE);
ALTER TABLE megapack_telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = 'unit_id', timescaledb.compress_orderby = 'time DESC');
ALTER TABLE ev_telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = 'vehicle_id', timescaledb.compress_orderby = 'time DESC');
SELECT add_compression_policy('megapack_telemetry', compress_after => INTERVAL '7 days', if_not_exists => TRUE);
SELECT add_compression_policy('ev_telemetry', compress_after => INTERVAL '7 days', if_not_exists => TRUE);
CREATE MATERIALIZED VIEW IF NOT EXISTS megapack_telemetry_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket,
       unit_id,
       site_id,
       count(*) AS readings,
       avg(soc_percent) AS soc_percent_avg,
       min(soc_percent) AS soc_percent_min,
       max(soc_percent) AS soc_percent_max,
       avg(power_kw) AS power_kw_avg,
       min(power_kw) AS power_kw_min,
       max(power_kw) AS power_kw_max,
       avg(temperature_c) AS temperature_c_avg,
       max(temperature_c) AS temperature_c_max,
       avg(voltage_v) AS voltage_v_avg,
       avg(current_a) AS current_a_avg
FROM megapack_telemetry
GROUP BY bucket, unit_id, site_id
WITH NO DATA;
CREATE MATERIALIZED VIEW IF NOT EXISTS ev_telemetry_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket,
       vehicle_id,
       count(*) AS readings,
       avg(battery_soc_percent) AS battery_soc_percent_avg,
       min(battery_soc_percent) AS battery_soc_percent_min,
       max(battery_soc_percent) AS battery_soc_percent_max,
       avg(battery_temp_c) AS battery_temp_c_avg,
       max(battery_temp_c) AS battery_temp_c_max,
       avg(speed_kmh) AS speed_kmh_avg,
       max(speed_kmh) AS speed_kmh_max,
       avg(charge_power_kw) AS charge_power_kw_avg
FROM ev_telemetry
GROUP BY bucket, vehicle_id
WITH NO DATA;
SELECT add_continuous_aggregate_policy('megapack_telemetry_1m', start_offset => INTERVAL '2 hours', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE);
SELECT add_continuous_aggregate_policy('ev_telemetry_1m', start_offset => INTERVAL '2 hours', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE);
