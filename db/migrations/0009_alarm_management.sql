-- Alarm management (ISA-18.2): one alert per rule and unit per episode with a severity that
-- rises and falls inside it, the four alarm states, shelving, assignment, and an event
-- history that is also the outbox of the notifications.

-- One rule per condition: the two temperature rules of a Megapack become one with two levels,
-- the EV battery temperature rule is renamed. Where a unit had both temperature alerts open,
-- the warning one ends (the critical one carries the episode on).
UPDATE alerts w SET state = 'cleared', cleared_at = now(), updated_at = now()
WHERE w.rule = 'megapack_temp_high' AND w.state <> 'cleared'
  AND EXISTS (SELECT 1 FROM alerts c WHERE c.rule = 'megapack_temp_critical'
              AND c.unit_id = w.unit_id AND c.state <> 'cleared');
UPDATE alerts SET rule = 'megapack_temp'
WHERE rule IN ('megapack_temp_high', 'megapack_temp_critical');
UPDATE alerts SET rule = 'ev_battery_temp' WHERE rule = 'ev_battery_over_temp';

-- The four ISA-18.2 states. An alert is *active* while its condition holds (one at most per
-- rule and unit); a cleared one stays listed until acknowledged.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_state_check;
DROP INDEX IF EXISTS alerts_one_open_episode;
UPDATE alerts SET state = CASE state
    WHEN 'active' THEN 'active_unacknowledged'
    WHEN 'acknowledged' THEN 'active_acknowledged'
    ELSE 'cleared' END;
ALTER TABLE alerts ALTER COLUMN state SET DEFAULT 'active_unacknowledged';
ALTER TABLE alerts ADD CONSTRAINT alerts_state_check CHECK (state IN (
    'active_unacknowledged', 'active_acknowledged', 'cleared_unacknowledged', 'cleared'));
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_active_episode ON alerts (rule, unit_id)
    WHERE state IN ('active_unacknowledged', 'active_acknowledged');

ALTER TABLE alerts
    ADD COLUMN IF NOT EXISTS peak_severity text
        CHECK (peak_severity IN ('info', 'warning', 'critical')),
    ADD COLUMN IF NOT EXISTS shelved_until timestamptz,
    ADD COLUMN IF NOT EXISTS shelved_at timestamptz,
    ADD COLUMN IF NOT EXISTS shelved_by text,
    ADD COLUMN IF NOT EXISTS shelve_reason text,
    ADD COLUMN IF NOT EXISTS assigned_to text,
    ADD COLUMN IF NOT EXISTS assigned_at timestamptz,
    ADD COLUMN IF NOT EXISTS assigned_by text;
UPDATE alerts SET peak_severity = severity WHERE peak_severity IS NULL;
ALTER TABLE alerts ALTER COLUMN peak_severity SET NOT NULL;
DROP INDEX IF EXISTS alerts_state_idx;
CREATE INDEX IF NOT EXISTS alerts_listed_idx ON alerts (alert_id DESC) WHERE state <> 'cleared';
CREATE INDEX IF NOT EXISTS alerts_site_idx ON alerts (site_id, alert_id DESC);
CREATE INDEX IF NOT EXISTS alerts_shelved_idx ON alerts (shelved_until)
    WHERE shelved_until IS NOT NULL;

-- The history of every alert, each row also an outbox entry: written in the transaction of
-- the change, published to the `alerts` exchange after it commits. `event_uuid` is the
-- notification's `event_id` (the same on every redelivery). An event of a shelved alert is
-- `silenced`: kept in the history, never notified.
ALTER TABLE alert_events DROP CONSTRAINT IF EXISTS alert_events_event_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_event_check CHECK (event IN (
    'raised', 'severity_changed', 'cleared', 'acknowledged', 'shelved', 'unshelved',
    'assigned'));
ALTER TABLE alert_events
    ADD COLUMN IF NOT EXISTS event_uuid uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN IF NOT EXISTS actor text,  -- the key's name; NULL: the rules or an expiry
    ADD COLUMN IF NOT EXISTS severity text,
    ADD COLUMN IF NOT EXISTS previous_severity text,
    ADD COLUMN IF NOT EXISTS silenced boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX IF NOT EXISTS alert_events_uuid_idx ON alert_events (event_uuid);
CREATE INDEX IF NOT EXISTS alert_events_alert_idx ON alert_events (alert_id, event_id);
DROP INDEX IF EXISTS alert_events_unpublished_idx;
CREATE INDEX IF NOT EXISTS alert_events_outbox_idx ON alert_events (event_id)
    WHERE published_at IS NULL AND NOT silenced;

-- The on-delay and off-delay timers of the rules, so a restart neither forgets a condition
-- that is on its way to raising nor restarts the wait of one on its way to clearing. A row
-- exists only while a timer runs.
CREATE TABLE IF NOT EXISTS alert_timers (
    rule              text        NOT NULL,
    unit_id           text        NOT NULL,
    holding_since     timestamptz,  -- condition held since, no alert yet (on-delay running)
    holding_severity  text,
    gone_since        timestamptz,  -- condition gone since, alert still active (off-delay)
    PRIMARY KEY (rule, unit_id)
);
