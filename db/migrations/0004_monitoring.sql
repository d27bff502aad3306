-- Monitoring: stored reports, stateful alerts and the outbox of their events.

-- A unit's usable energy; NULL means the service's MEGAPACK_CAPACITY_KWH applies.
ALTER TABLE units ADD COLUMN IF NOT EXISTS capacity_kwh double precision
    CHECK (capacity_kwh IS NULL OR capacity_kwh > 0);

-- The report counts the readings *stored* in its window. Rows are appended in roughly
-- stored_at order, so a BRIN index finds a window for almost no upkeep on the ingest path.
CREATE INDEX IF NOT EXISTS megapack_telemetry_stored_brin ON megapack_telemetry
    USING brin (stored_at) WITH (pages_per_range = 32, autosummarize = on);
CREATE INDEX IF NOT EXISTS ev_telemetry_stored_brin ON ev_telemetry
    USING brin (stored_at) WITH (pages_per_range = 32, autosummarize = on);

-- One report per interval: `slot_start` is unique, so two monitoring instances cannot both
-- store the report of the same interval.
CREATE TABLE IF NOT EXISTS monitoring_reports (
    report_id     bigserial        PRIMARY KEY,
    slot_start    timestamptz      NOT NULL UNIQUE,
    window_start  timestamptz      NOT NULL,
    window_end    timestamptz      NOT NULL,
    instance      text             NOT NULL,  -- which monitoring process computed it
    report        jsonb            NOT NULL,
    created_at    timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS monitoring_reports_created_idx ON monitoring_reports (created_at DESC);

-- One row per episode of a rule on a unit: raised once when the condition starts, cleared
-- when it ends. The partial unique index makes a second open alert of the same rule and unit
-- impossible, whatever restarts or concurrent instances do.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id          bigserial   PRIMARY KEY,
    rule              text        NOT NULL,
    unit_id           text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('megapack', 'ev')),
    site_id           text,
    fleet_id          text,
    severity          text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    state             text        NOT NULL DEFAULT 'active'
                                  CHECK (state IN ('active', 'acknowledged', 'cleared')),
    message           text        NOT NULL,
    value             double precision,  -- the measurement that raised it
    threshold         double precision,
    fault_codes       text[]      NOT NULL DEFAULT '{}',
    raised_at         timestamptz NOT NULL DEFAULT now(),
    acknowledged_at   timestamptz,
    acknowledged_by   text,       -- the operator key's name
    cleared_at        timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open_episode
    ON alerts (rule, unit_id) WHERE state <> 'cleared';
CREATE INDEX IF NOT EXISTS alerts_state_idx ON alerts (state, alert_id DESC);
CREATE INDEX IF NOT EXISTS alerts_unit_idx ON alerts (unit_id, alert_id DESC);

-- Outbox: written in the transaction that raises or clears, published (at least once, the
-- event id as message id) after it commits.
CREATE TABLE IF NOT EXISTS alert_events (
    event_id      bigserial   PRIMARY KEY,
    alert_id      bigint      NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    event         text        NOT NULL CHECK (event IN ('raised', 'cleared', 'acknowledged')),
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX IF NOT EXISTS alert_events_unpublished_idx
    ON alert_events (event_id) WHERE published_at IS NULL;
