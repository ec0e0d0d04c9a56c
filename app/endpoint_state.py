"""Endpoint state changes that move its deliveries, shared by the API and the workers.

Disabling an endpoint or opening its circuit holds what waits for it (status ``held``, due
time kept, no attempt spent); enabling it or closing its circuit releases the held rows, which
then drain in order of due time. Every statement here first updates the endpoint row, so it
runs under that row's lock: a claim that decides to hold a delivery takes the same row lock
(``FOR SHARE``) first, so no delivery is held after the release that should have freed it.

A delivery whose lease is live is in flight and left alone: its attempt decides its fate.
Statements use ``$n`` parameters: asyncpg in the workers, ``exec_driver_sql`` in the API.
"""

# $1 endpoint ids, $2 reason. Returns the endpoints that were enabled until now.
DISABLE = """
WITH disabled AS (
    UPDATE endpoints
    SET enabled = false, disabled_reason = $2, updated_at = now()
    WHERE id = ANY($1::text[]) AND enabled
    RETURNING id, tenant_id, url
), held AS (
    UPDATE deliveries SET status = 'held', updated_at = now()
    WHERE endpoint_id IN (SELECT id FROM disabled)
      AND status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at <= now())
)
SELECT id, tenant_id, url FROM disabled
"""

# $1 endpoint ids. Re-enabling also closes the circuit: the endpoint starts afresh.
ENABLE = """
WITH enabled AS (
    UPDATE endpoints
    SET enabled = true, disabled_reason = NULL, circuit_state = 'closed',
        circuit_failures = 0, circuit_opened_at = NULL, circuit_next_probe_at = NULL,
        circuit_reopens = 0, updated_at = now()
    WHERE id = ANY($1::text[]) AND NOT enabled
    RETURNING id
)
UPDATE deliveries
SET status = 'pending', next_attempt_at = coalesce(next_attempt_at, now()), updated_at = now()
WHERE endpoint_id IN (SELECT id FROM enabled) AND status = 'held'
"""

# $1 endpoint ids, $2 the states to close from. Returns the endpoints closed.
CLOSE_CIRCUITS = """
WITH closed AS (
    UPDATE endpoints
    SET circuit_state = 'closed', circuit_failures = 0, circuit_opened_at = NULL,
        circuit_next_probe_at = NULL, circuit_reopens = 0, updated_at = now()
    WHERE id = ANY($1::text[]) AND circuit_state = ANY($2::text[])
    RETURNING id, tenant_id, url, enabled
), released AS (
    UPDATE deliveries
    SET status = 'pending', next_attempt_at = coalesce(next_attempt_at, now()),
        updated_at = now()
    WHERE endpoint_id IN (SELECT id FROM closed WHERE enabled) AND status = 'held'
)
SELECT id, tenant_id, url FROM closed
"""

# $1 endpoint ids, $2 consecutive failures, $3 cool-downs. Returns the circuits opened.
OPEN_CIRCUITS = """
WITH opened AS (
    UPDATE endpoints AS ep
    SET circuit_state = 'open', circuit_failures = u.failures, circuit_opened_at = now(),
        circuit_next_probe_at = now() + u.cooldown, circuit_reopens = 0, updated_at = now()
    FROM unnest($1::text[], $2::int[], $3::interval[]) AS u(id, failures, cooldown)
    WHERE ep.id = u.id AND ep.circuit_state = 'closed' AND ep.enabled
    RETURNING ep.id, ep.tenant_id, ep.url, ep.circuit_failures, ep.circuit_opened_at,
              ep.circuit_next_probe_at
), held AS (
    UPDATE deliveries SET status = 'held', updated_at = now()
    WHERE endpoint_id IN (SELECT id FROM opened)
      AND status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at <= now())
)
SELECT * FROM opened
"""

# $1 endpoint ids, $2 cool-downs: a failed probe opens the circuit again, for longer.
REOPEN_CIRCUITS = """
UPDATE endpoints AS ep
SET circuit_state = 'open', circuit_failures = ep.circuit_failures + 1,
    circuit_next_probe_at = now() + u.cooldown, circuit_reopens = ep.circuit_reopens + 1,
    updated_at = now()
FROM unnest($1::text[], $2::interval[]) AS u(id, cooldown)
WHERE ep.id = u.id AND ep.circuit_state = 'half_open'
"""

# $1 endpoint ids, $2 consecutive failures: what the API shows while the circuit is closed.
COUNT_FAILURES = """
UPDATE endpoints AS ep
SET circuit_failures = u.failures
FROM unnest($1::text[], $2::int[]) AS u(id, failures)
WHERE ep.id = u.id AND ep.circuit_state = 'closed' AND ep.circuit_failures <> u.failures
"""
