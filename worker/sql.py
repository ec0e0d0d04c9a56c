"""The worker's SQL, named and explicit: this is the hot path."""

# A claim runs in one transaction: lock due rows (skipping rows a peer has locked), decide in
# Python which may go now (circuit, in-flight cap, rate limit), then apply. $1 rows to take,
# $2 how many of the earliest due rows to look at, $3 at most this many per endpoint: a
# saturated endpoint's backlog does not fill the claim, the rows behind it get their turn.
CLAIM_CANDIDATES = """
WITH scan AS (
    SELECT id, endpoint_id, next_attempt_at
    FROM deliveries
    WHERE status = 'pending'
      AND next_attempt_at <= now()
      AND (lease_expires_at IS NULL OR lease_expires_at <= now())
    ORDER BY next_attempt_at
    LIMIT $2
), fair AS (
    SELECT id
    FROM (
        SELECT id, next_attempt_at,
               row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS rank
        FROM scan
    ) AS ranked
    WHERE rank <= $3
    ORDER BY next_attempt_at
    LIMIT $1
)
SELECT d.id, d.endpoint_id, d.trigger, ep.enabled, ep.circuit_state, ep.rate_limit
FROM deliveries AS d
JOIN fair ON fair.id = d.id
JOIN endpoints AS ep ON ep.id = d.endpoint_id
WHERE d.status = 'pending'
  AND d.next_attempt_at <= now()
  AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= now())
ORDER BY d.next_attempt_at
FOR UPDATE OF d SKIP LOCKED
"""

# Before holding a delivery for its endpoint's sake, read the endpoint under a share lock:
# whoever releases held deliveries updates that row first, so it waits for this claim. An
# endpoint locked by such a change right now is skipped (its deliveries stay due): waiting
# for it here, with its deliveries locked, could deadlock against the change.
LOCK_ENDPOINTS = """
SELECT id, enabled, circuit_state FROM endpoints WHERE id = ANY($1::text[])
FOR SHARE SKIP LOCKED
"""

# $1 held, $2/$3 deferred and until when, $4 leased, $5 lease, $6 lease length. Taking the
# lease writes no indexed column, so it is a HOT update (no index writes) on the hot path;
# a lease that expires (worker killed mid-request) makes the row claimable again.
APPLY_CLAIM = """
WITH held AS (
    UPDATE deliveries SET status = 'held', updated_at = now()
    WHERE id = ANY($1::text[])
), deferred AS (
    UPDATE deliveries AS d SET next_attempt_at = u.due_at
    FROM unnest($2::text[], $3::timestamptz[]) AS u(id, due_at)
    WHERE d.id = u.id
), claimed AS (
    UPDATE deliveries AS d
    SET leased_by = $5, lease_expires_at = now() + $6::interval
    WHERE d.id = ANY($4::text[])
    RETURNING d.id, d.event_id, d.endpoint_id, d.tenant_id, d.attempts, d.chain_attempts,
              d.trigger
)
SELECT c.id, c.event_id, c.endpoint_id, c.tenant_id, c.attempts, c.chain_attempts,
       c.trigger, e.type AS event_type, e.payload::text AS payload,
       e.created_at AS event_created_at, e.trace_context, ep.url, ep.headers::text AS headers,
       ep.circuit_state, ep.circuit_failures, ep.circuit_reopens,
       ep.circuit_breaker::text AS circuit_breaker,
       ARRAY(
           SELECT s.sealed_secret FROM endpoint_secrets AS s
           WHERE s.endpoint_id = c.endpoint_id AND (s.expires_at IS NULL OR s.expires_at > now())
           ORDER BY s.id DESC
       ) AS sealed_secrets
FROM claimed AS c
JOIN events AS e ON e.id = c.event_id
JOIN endpoints AS ep ON ep.id = c.endpoint_id
"""

# When the next delivery can be claimed, so an idle worker sleeps exactly until then. Looks
# at the earliest due rows only: leased ones count from their lease's end.
NEXT_DUE_AT = """
SELECT min(CASE WHEN lease_expires_at > now() THEN lease_expires_at ELSE next_attempt_at END)
FROM (
    SELECT next_attempt_at, lease_expires_at
    FROM deliveries
    WHERE status = 'pending'
    ORDER BY next_attempt_at
    LIMIT 1000
) AS earliest
"""

RECORD_ATTEMPTS = """
INSERT INTO attempts (
    id, tenant_id, delivery_id, endpoint_id, number, trigger, url, request_headers,
    response_status, response_headers, response_body, duration_ms, error_class, error_detail,
    worker_id, created_at
)
SELECT id, tenant_id, delivery_id, endpoint_id, number, trigger, url, request_headers::jsonb,
       response_status, response_headers::jsonb, response_body, duration_ms, error_class,
       error_detail, $15, created_at
FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[],
    $8::text[], $9::int[], $10::text[], $11::text[], $12::bigint[], $13::text[], $14::text[],
    $16::timestamptz[]
) AS a(
    id, tenant_id, delivery_id, endpoint_id, number, trigger, url, request_headers,
    response_status, response_headers, response_body, duration_ms, error_class, error_detail,
    created_at
)
"""

# Only the holder of the lease may move a delivery on; a worker whose lease was taken over
# (it outlived it) records its attempt but leaves the delivery to the new holder.
FINISH_DELIVERIES = """
UPDATE deliveries AS d
SET status = u.status,
    attempts = d.attempts + 1,
    chain_attempts = d.chain_attempts + 1,
    trigger = 'scheduled',
    next_attempt_at = u.next_attempt_at,
    dead_reason = u.dead_reason,
    dead_at = CASE WHEN u.status = 'dead' THEN now() END,
    finished_at = CASE WHEN u.status IN ('succeeded', 'dead') THEN now() END,
    leased_by = NULL,
    lease_expires_at = NULL,
    updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
    AS u(id, lease, status, next_attempt_at, dead_reason)
WHERE d.id = u.id AND d.leased_by = u.lease AND d.status = 'pending'
RETURNING d.id
"""

# Leases of requests a stopping worker could not finish go back at once, not at expiry.
RELEASE_LEASES = """
UPDATE deliveries
SET next_attempt_at = now(), leased_by = NULL, lease_expires_at = NULL, updated_at = now()
WHERE id = ANY($1::text[]) AND leased_by = ANY($2::text[]) AND status = 'pending'
"""
