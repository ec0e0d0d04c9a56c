"""Endpoint state changes that move its deliveries, shared by the API and the workers.

Disabling an endpoint or opening its circuit holds what waits for it (status ``held``, due
time kept, no attempt spent); enabling it or closing its circuit releases the held rows, which
then drain in order of due time.

Each change is two statements in one transaction: first the endpoint row (which takes its
lock), then HOLD_WAITING or RELEASE_HELD on its deliveries. They must be separate statements:
a claim that holds a delivery takes the endpoint's row lock (``FOR SHARE``) first and commits
while the endpoint UPDATE waits for it, and only a statement that starts after that wait sees
the delivery it held. (One statement with both parts reads the deliveries as they were when it
began, and would leave that delivery held behind a closed circuit.)

A delivery whose lease is live is in flight and left alone: its attempt decides its fate.
Statements use ``$n`` parameters: asyncpg in the workers, ``exec_driver_sql`` in the API.
"""

# $1 endpoint ids, $2 reason. Returns the endpoints that were enabled until now.
DISABLE = """
UPDATE endpoints
SET enabled = false, disabled_reason = $2, updated_at = now()
WHERE id = ANY($1::text[]) AND enabled
RETURNING id, tenant_id, url
"""

# $1 disable limit: endpoints whose circuit has been open that long and whose last probe
# failed (an endpoint nobody sent to since it opened is not known to be down still).
DISABLE_STALE = """
UPDATE endpoints
SET enabled = false, disabled_reason = 'circuit_open', updated_at = now()
WHERE circuit_state <> 'closed' AND enabled AND circuit_reopens > 0
  AND circuit_opened_at < now() - $1::interval
RETURNING id, tenant_id, url
"""

# $1 endpoint ids. Re-enabling also closes the circuit: the endpoint starts afresh.
ENABLE = """
UPDATE endpoints
SET enabled = true, disabled_reason = NULL, circuit_state = 'closed', circuit_failures = 0,
    circuit_opened_at = NULL, circuit_next_probe_at = NULL, circuit_reopens = 0,
    updated_at = now()
WHERE id = ANY($1::text[]) AND NOT enabled
RETURNING id
"""

# $1 endpoint ids, $2 the states to close from. Returns the endpoints closed.
CLOSE_CIRCUITS = """
UPDATE endpoints
SET circuit_state = 'closed', circuit_failures = 0, circuit_opened_at = NULL,
    circuit_next_probe_at = NULL, circuit_reopens = 0, updated_at = now()
WHERE id = ANY($1::text[]) AND circuit_state = ANY($2::text[])
RETURNING id, tenant_id, url, enabled
"""

# $1 endpoint ids, $2 consecutive failures, $3 cool-downs. Returns the circuits opened.
OPEN_CIRCUITS = """
UPDATE endpoints AS ep
SET circuit_state = 'open', circuit_failures = u.failures, circuit_opened_at = now(),
    circuit_next_probe_at = now() + u.cooldown, circuit_reopens = 0, updated_at = now()
FROM unnest($1::text[], $2::int[], $3::interval[]) AS u(id, failures, cooldown)
WHERE ep.id = u.id AND ep.circuit_state = 'closed' AND ep.enabled
RETURNING ep.id, ep.tenant_id, ep.url, ep.circuit_failures, ep.circuit_opened_at,
          ep.circuit_next_probe_at
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

# $1 endpoint ids: after DISABLE or OPEN_CIRCUITS, in the same transaction.
HOLD_WAITING = """
UPDATE deliveries SET status = 'held', updated_at = now()
WHERE endpoint_id = ANY($1::text[])
  AND status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at <= now())
"""

# $1 endpoint ids: after ENABLE or CLOSE_CIRCUITS (of enabled endpoints), same transaction.
RELEASE_HELD = """
UPDATE deliveries
SET status = 'pending', next_attempt_at = coalesce(next_attempt_at, now()), updated_at = now()
WHERE endpoint_id = ANY($1::text[]) AND status = 'held'
"""
