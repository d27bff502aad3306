-- Operator commands and everything units answered about them.

-- A unit's rated power; NULL means the service's MEGAPACK_RATED_POWER_KW applies.
ALTER TABLE units ADD COLUMN IF NOT EXISTS rated_power_kw double precision
    CHECK (rated_power_kw IS NULL OR rated_power_kw > 0);

-- One row per command. `status` only moves forward (the UPDATEs in db/commands.py name the
-- allowed predecessors); each step keeps its own timestamp.
CREATE TABLE IF NOT EXISTS commands (
    command_id       uuid        PRIMARY KEY,
    seq              bigserial   NOT NULL,  -- creation order, the key of paging
    unit_id          text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('megapack', 'ev')),
    type             text        NOT NULL,
    params           jsonb       NOT NULL DEFAULT '{}',
    ttl_s            integer     NOT NULL CHECK (ttl_s > 0),
    requested_by     text        NOT NULL,  -- the operator key's name, never its secret
    idempotency_key  text,
    request_digest   text        NOT NULL,  -- what was asked, to tell a retry from a reuse
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'sent', 'acknowledged', 'completed', 'rejected', 'failed', 'expired')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    acknowledged_at  timestamptz,
    completed_at     timestamptz,
    rejected_at      timestamptz,
    failed_at        timestamptz,
    expired_at       timestamptz,
    reason           text,       -- the unit's (or the sweeper's) reason for the final status
    agent_id         text,       -- the agent that answered
    publish_attempts integer     NOT NULL DEFAULT 0,
    last_publish_at  timestamptz,
    delivery_error   text,       -- why the last publish was not confirmed
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commands_idempotency_key UNIQUE (requested_by, idempotency_key)
);
CREATE INDEX IF NOT EXISTS commands_unit_seq_idx ON commands (unit_id, seq DESC);
-- The sweeper and the re-publisher only look at open commands.
CREATE INDEX IF NOT EXISTS commands_open_idx
    ON commands (expires_at) WHERE status IN ('pending', 'sent', 'acknowledged');

-- Every answer a unit sent, applied or not (late and duplicate answers are kept for audit).
CREATE TABLE IF NOT EXISTS command_answers (
    id           bigserial   PRIMARY KEY,
    command_id   uuid        NOT NULL REFERENCES commands (command_id) ON DELETE CASCADE,
    status       text        NOT NULL,
    reason       text,
    agent_id     text,
    unit_at      timestamptz,           -- when the unit says it happened
    received_at  timestamptz NOT NULL DEFAULT now(),
    applied      boolean     NOT NULL   -- false: the command had already moved past it
);
CREATE INDEX IF NOT EXISTS command_answers_command_idx ON command_answers (command_id, id);
