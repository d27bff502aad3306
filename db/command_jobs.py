"""SQL of the control service's periodic jobs: release, publish claims, expiry, verification."""

from __future__ import annotations

import uuid

import asyncpg

from control_service.model import (
    EFFECT_TOLERANCE,
    PREDECESSORS,
    TIMEOUT_REASON,
    VERIFIED_TYPES,
    CommandRecord,
)
from db.command_rows import record

# Telemetry is matched by the gateway's receipt time (our clock); the unit's own `time` only
# bounds the index range, allowing its clock this much lag.
_UNIT_CLOCK_LAG = "INTERVAL '5 minutes'"

_REQUESTED = """CASE c.type WHEN 'set_power' THEN (c.params->>'power_kw') || ' kW'
    ELSE c.params->>'mode' END"""
_REPORTED = """CASE c.type WHEN 'set_power' THEN round(r.power_kw::numeric, 1)::text
    || ' kW (' || r.state || ')' ELSE r.state END"""
_MATCHES = f"""CASE c.type
    WHEN 'set_power' THEN abs(t.power_kw - (c.params->>'power_kw')::float8)
        <= {EFFECT_TOLERANCE} * COALESCE(u.rated_power_kw, $2)
    ELSE t.state = c.params->>'mode' END"""


class JobQueries:
    """What the sweeper, the release poller and the publisher ask of `commands`."""

    _pool: asyncpg.Pool

    async def claim(self, command_ids: list[uuid.UUID]) -> list[CommandRecord]:
        """Claim new pending commands for their first publish (a superseded one, or one the
        republisher already took, is not claimed)."""
        rows = await self._pool.fetch(
            """UPDATE commands SET publish_attempts = publish_attempts + 1,
                   last_publish_at = now()
               WHERE command_id = ANY($1::uuid[]) AND status = 'pending'
                 AND publish_attempts = 0 RETURNING *""",
            command_ids,
        )
        return [record(row) for row in rows]

    async def mark_sent(self, command_ids: list[uuid.UUID]) -> list[CommandRecord]:
        """`pending` -> `sent` after the broker's confirms; those that had moved on are left."""
        rows = await self._pool.fetch(
            """UPDATE commands SET status = 'sent', sent_at = now(), updated_at = now(),
                   delivery_error = NULL
               WHERE command_id = ANY($1::uuid[]) AND status = 'pending' RETURNING *""",
            command_ids,
        )
        return [record(row) for row in rows]

    async def fail_unroutable(
        self, command_ids: list[uuid.UUID], reason: str
    ) -> list[CommandRecord]:
        """`failed` at once: no queue took the command (the broker returned it)."""
        rows = await self._pool.fetch(
            """UPDATE commands SET status = 'failed', failed_at = now(), updated_at = now(),
                   reason = $2
               WHERE command_id = ANY($1::uuid[]) AND status = 'pending' RETURNING *""",
            command_ids,
            reason,
        )
        return [record(row) for row in rows]

    async def note_delivery_error(self, command_ids: list[uuid.UUID], error: str) -> None:
        """Remember why a publish was not confirmed (shown to operators while it is pending)."""
        await self._pool.execute(
            """UPDATE commands SET delivery_error = $2, updated_at = now()
               WHERE command_id = ANY($1::uuid[])""",
            command_ids,
            error[:500],
        )

    async def release_due(self, *, limit: int = 1000) -> list[CommandRecord]:
        """Scheduled commands whose time has come: `pending`, claimed for publishing."""
        rows = await self._pool.fetch(
            """UPDATE commands SET status = 'pending', pending_at = now(), updated_at = now(),
                   publish_attempts = publish_attempts + 1, last_publish_at = now()
               WHERE command_id IN (
                   SELECT command_id FROM commands
                   WHERE status = 'scheduled' AND not_before <= now() AND expires_at > now()
                   ORDER BY not_before LIMIT $1
                   FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            limit,
        )
        return [record(row) for row in rows]

    async def expire_overdue(self, *, grace_s: float) -> list[CommandRecord]:
        """Mark `expired` every command not acknowledged before its expiry (`grace_s` ago)."""
        rows = await self._pool.fetch(
            """UPDATE commands SET status = 'expired', expired_at = now(), updated_at = now(),
                   reason = CASE status
                       WHEN 'pending' THEN 'not delivered before expiry'
                           || COALESCE(': ' || delivery_error, '')
                       WHEN 'scheduled' THEN 'not released before expiry'
                       ELSE 'no acknowledgement from the unit before expiry' END
               WHERE status = ANY($1::text[])
                 AND expires_at < now() - $2::float8 * INTERVAL '1 second'
               RETURNING *""",
            list(PREDECESSORS["expired"]),
            grace_s,
        )
        return [record(row) for row in rows]

    async def fail_unfinished(self, *, timeout_s: float) -> list[CommandRecord]:
        """Mark `failed` every unverified command acknowledged `timeout_s` ago, never finished."""
        rows = await self._pool.fetch(
            """UPDATE commands SET status = 'failed', failed_at = now(), updated_at = now(),
                   reason = $2 || $1::float8 || ' s of acknowledgement'
               WHERE status = 'acknowledged' AND type <> ALL($3::text[])
                 AND acknowledged_at < now() - $1::float8 * INTERVAL '1 second'
               RETURNING *""",
            timeout_s,
            TIMEOUT_REASON,
            sorted(VERIFIED_TYPES),
        )
        return [record(row) for row in rows]

    async def verify_effects(
        self, *, default_rated_power_kw: float, timeout_s: float
    ) -> list[CommandRecord]:
        """`completed` (with `achieved`) where telemetry shows the effect; `failed` naming
        requested and reported values where it did not within `timeout_s` of acknowledgement."""
        completed = await self._pool.fetch(
            f"""WITH seen AS (
                    SELECT c.command_id, r.power_kw, r.state, r.time
                    FROM commands c LEFT JOIN units u ON u.unit_id = c.unit_id
                    CROSS JOIN LATERAL (
                        SELECT t.power_kw, t.state, t.time FROM megapack_telemetry t
                        WHERE t.unit_id = c.unit_id AND t.received_at >= c.sent_at
                          AND t.time >= c.sent_at - {_UNIT_CLOCK_LAG} AND {_MATCHES}
                        ORDER BY t.received_at LIMIT 1) r
                    WHERE c.status = 'acknowledged' AND c.type = ANY($1::text[]))
                UPDATE commands SET status = 'completed', completed_at = now(),
                    updated_at = now(), reason = NULL,
                    achieved = jsonb_build_object('power_kw', seen.power_kw,
                        'state', seen.state, 'at', seen.time)
                FROM seen WHERE commands.command_id = seen.command_id
                  AND commands.status = 'acknowledged'
                RETURNING commands.*""",  # noqa: S608 (fixed fragments above)
            sorted(VERIFIED_TYPES),
            default_rated_power_kw,
        )
        failed = await self._pool.fetch(
            f"""WITH late AS (
                    SELECT c.command_id, {_REQUESTED} AS requested,
                        COALESCE({_REPORTED}, 'no telemetry since it was sent') AS reported,
                        r.power_kw, r.state, r.time
                    FROM commands c LEFT JOIN LATERAL (
                        SELECT t.power_kw, t.state, t.time FROM megapack_telemetry t
                        WHERE t.unit_id = c.unit_id AND t.received_at >= c.sent_at
                          AND t.time >= c.sent_at - {_UNIT_CLOCK_LAG}
                        ORDER BY t.time DESC LIMIT 1) r ON true
                    WHERE c.status = 'acknowledged' AND c.type = ANY($1::text[])
                      AND c.acknowledged_at < now() - $2::float8 * INTERVAL '1 second')
                UPDATE commands SET status = 'failed', failed_at = now(), updated_at = now(),
                    reason = 'requested ' || late.requested || ', unit reports '
                        || late.reported || ' after ' || $2::float8 || ' s',
                    achieved = CASE WHEN late.time IS NULL THEN NULL ELSE jsonb_build_object(
                        'power_kw', late.power_kw, 'state', late.state, 'at', late.time) END
                FROM late WHERE commands.command_id = late.command_id
                  AND commands.status = 'acknowledged'
                RETURNING commands.*""",  # noqa: S608 (fixed fragments above)
            sorted(VERIFIED_TYPES),
            timeout_s,
        )
        return [record(row) for row in (*completed, *failed)]

    async def claim_pending(self, *, idle_s: float, limit: int = 100) -> list[CommandRecord]:
        """Claim pending, unexpired commands not published for `idle_s` (one claimer per row)."""
        rows = await self._pool.fetch(
            """UPDATE commands SET publish_attempts = publish_attempts + 1, last_publish_at = now()
               WHERE command_id IN (
                   SELECT command_id FROM commands
                   WHERE status = 'pending' AND expires_at > now()
                     AND COALESCE(last_publish_at, pending_at, created_at)
                         < now() - $1::float8 * INTERVAL '1 second'
                   ORDER BY created_at LIMIT $2
                   FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            idle_s,
            limit,
        )
        return [record(row) for row in rows]
