-- Telemetry tables and the units registry. A reading's key is (unit, time): a redelivered
-- reading never makes a second row.
CREATE TABLE IF NOT EXISTS megapack_telemetry (
    unit_id        text             NOT NULL,
    time           timestamptz      NOT NULL,
    site_id        text             NOT NULL,
    soc_percent    double precision NOT NULL,
    soh_percent    double precision,
    power_kw       double precision NOT NULL,
    voltage_v      double precision NOT NULL,
    current_a      double precision NOT NULL,
    temperature_c  double precision NOT NULL,
    state          text             NOT NULL,
    fault_codes    text[]           NOT NULL DEFAULT '{}',
    received_at    timestamptz      NOT NULL,  -- gateway receipt
    stored_at      timestamptz      NOT NULL DEFAULT now(),  -- ingest transaction
    PRIMARY KEY (unit_id, time)
);
CREATE INDEX IF NOT EXISTS megapack_telemetry_time_idx ON megapack_telemetry (time DESC);
CREATE INDEX IF NOT EXISTS megapack_telemetry_site_time_idx ON megapack_telemetry (site_id, time DESC);

CREATE TABLE IF NOT EXISTS ev_telemetry (
    vehicle_id           text             NOT NULL,
    time                 timestamptz      NOT NULL,
    fleet_id             text,
    battery_soc_percent  double precision NOT NULL,
    battery_temp_c       double precision NOT NULL,
    latitude             double precision NOT NULL,
    longitude            double precision NOT NULL,
    speed_kmh            double precision NOT NULL,
    charging_state       text             NOT NULL,
    charge_power_kw      double precision NOT NULL,
    tire_pressure_psi    double precision,
    odometer_km          double precision,
    received_at          timestamptz      NOT NULL,
    stored_at            timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle_id, time)
);
CREATE INDEX IF NOT EXISTS ev_telemetry_time_idx ON ev_telemetry (time DESC);

-- Every Megapack and vehicle seen, with its latest state (kept by the ingestion consumer).
CREATE TABLE IF NOT EXISTS units (
    unit_id            text        PRIMARY KEY,
    kind               text        NOT NULL CHECK (kind IN ('megapack', 'ev')),
    site_id            text,
    fleet_id           text,
    first_seen         timestamptz NOT NULL DEFAULT now(),
    last_seen          timestamptz NOT NULL,
    last_state         text        NOT NULL,
    last_soc_percent   double precision NOT NULL,
    last_power_kw      double precision,
    last_temperature_c double precision,
    last_fault_codes   text[]      NOT NULL DEFAULT '{}',
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS units_kind_idx ON units (kind, site_id);
