"""The worker's SQL, named and explicit: this is the hot path."""

# Claim due deliveries of enabled endpoints. The lease is the only thing written, and no
# index covers it, so the update is HOT (no index writes) on this hot path. A lease that
# expires (worker killed mid-request) makes the row claimable again by any worker.
CLAIM_DUE = """
WITH due AS (
    SELECT d.id
    FROM deliveries AS d
    JOIN endpoints AS ep ON ep.id = d.endpoint_id
    WHERE d.status = 'pending'
      AND d.next_attempt_at <= now()
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= now())
      AND ep.enabled
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE deliveries AS d
    SET leased_by = $2, lease_expires_at = now() + $3::interval
    FROM due
    WHERE d.id = due.id
    RETURNING d.id, d.event_id, d.endpoint_id, d.tenant_id, d.attempts, d.chain_attempts,
              d.trigger
)
SELECT c.id, c.event_id, c.endpoint_id, c.tenant_id, c.attempts, c.chain_attempts, c.trigger,
       e.type AS event_type, e.payload::text AS payload, e.created_at AS event_created_at,
       e.trace_context, ep.url, ep.headers::text AS headers
FROM claimed AS c
JOIN events AS e ON e.id = c.event_id
JOIN endpoints AS ep ON ep.id = c.endpoint_id
"""

# When the next delivery can be claimed, so an idle worker sleeps exactly until then. Looks
# at the earliest due rows only: leased ones count from their lease's end.
NEXT_DUE_AT = """
SELECT min(CASE WHEN lease_expires_at > now() THEN lease_expires_at ELSE next_attempt_at END)
FROM (
    SELECT d.next_attempt_at, d.lease_expires_at
    FROM deliveries AS d
    JOIN endpoints AS ep ON ep.id = d.endpoint_id
    WHERE d.status = 'pending' AND ep.enabled
    ORDER BY d.next_attempt_at
    LIMIT 1000
) AS earliest
"""

ACTIVE_SECRETS = """
SELECT endpoint_id, sealed_secret
FROM endpoint_secrets
WHERE endpoint_id = ANY($1::text[]) AND (expires_at IS NULL OR expires_at > now())
ORDER BY id DESC
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
"""

# 410 Gone: disable the endpoint and hold what else waits for it, in one statement so a
# concurrent re-enable (which releases held rows under the endpoint's row lock) sees all.
DISABLE_ENDPOINTS = """
WITH disabled AS (
    UPDATE endpoints
    SET enabled = false, disabled_reason = $2, updated_at = now()
    WHERE id = ANY($1::text[]) AND enabled
    RETURNING id
)
UPDATE deliveries
SET status = 'held', next_attempt_at = NULL, updated_at = now()
WHERE endpoint_id IN (SELECT id FROM disabled)
  AND status = 'pending'
  AND (lease_expires_at IS NULL OR lease_expires_at <= now())
"""

# Leases of requests a stopping worker could not finish go back at once, not at expiry.
RELEASE_LEASES = """
UPDATE deliveries
SET next_attempt_at = now(), leased_by = NULL, lease_expires_at = NULL, updated_at = now()
WHERE id = ANY($1::text[]) AND leased_by = ANY($2::text[]) AND status = 'pending'
"""
