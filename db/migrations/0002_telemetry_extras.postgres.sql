-- Plain PostgreSQL: views of the same names and columns as the TimescaleDB continuous
-- aggregates, bucketing with date_bin (same 1-minute buckets as time_bucket).
CREATE OR REPLACE VIEW megapack_telemetry_1m AS
SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
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
GROUP BY 1, unit_id, site_id;

CREATE OR REPLACE VIEW ev_telemetry_1m AS
SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
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
GROUP BY 1, vehicle_id;
