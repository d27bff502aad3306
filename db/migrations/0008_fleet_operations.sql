-- Fleet operations (SPEC §12): scheduled and superseded commands, groups, setpoint holds,
-- verified effects. Plain SQL: the same on PostgreSQL and TimescaleDB.

-- Two more statuses: `scheduled` (waiting for not_before) and `superseded` (final).
ALTER TABLE commands DROP CONSTRAINT IF EXISTS commands_status_check;
ALTER TABLE commands ADD CONSTRAINT commands_status_check CHECK (status IN (
    'scheduled', 'pending', 'sent', 'acknowledged', 'completed', 'rejected', 'failed',
    'expired', 'superseded'));

ALTER TABLE commands
    ADD COLUMN IF NOT EXISTS not_before    timestamptz,  -- scheduled: not published before
    ADD COLUMN IF NOT EXISTS pending_at    timestamptz,  -- a scheduled command was released
    ADD COLUMN IF NOT EXISTS superseded_at timestamptz,
    ADD COLUMN IF NOT EXISTS superseded_by uuid,         -- the newer command that won
    ADD COLUMN IF NOT EXISTS lapsed_at     timestamptz,  -- the unit's hold ran out unrenewed
    ADD COLUMN IF NOT EXISTS achieved      jsonb,        -- what telemetry showed (verified)
    ADD COLUMN IF NOT EXISTS group_id      uuid;

-- The release poller reads only what waits for its time.
CREATE INDEX IF NOT EXISTS commands_scheduled_idx ON commands (not_before)
    WHERE status = 'scheduled';
CREATE INDEX IF NOT EXISTS commands_group_idx ON commands (group_id, unit_id)
    WHERE group_id IS NOT NULL;
-- Supersession looks for a unit's open commands of one type.
CREATE INDEX IF NOT EXISTS commands_unit_open_idx ON commands (unit_id, type, seq)
    WHERE status IN ('scheduled', 'pending');

-- One row per group request; its commands carry its id.
CREATE TABLE IF NOT EXISTS command_groups (
    group_id        uuid        PRIMARY KEY,
    selector        jsonb       NOT NULL,
    type            text        NOT NULL,
    params          jsonb       NOT NULL DEFAULT '{}',
    ttl_s           integer     NOT NULL CHECK (ttl_s > 0),
    not_before      timestamptz,
    requested_by    text        NOT NULL,
    idempotency_key text,
    request_digest  text        NOT NULL,
    command_count   integer     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT command_groups_idempotency_key UNIQUE (requested_by, idempotency_key)
);
