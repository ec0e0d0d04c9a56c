"""Human durations used by settings and API bodies: ``30s``, ``5m``, ``2h``, ``30d``."""

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """Parse ``<number><unit>``; a bare number means seconds."""
    stripped = text.strip()
    try:
        return timedelta(seconds=float(stripped))
    except ValueError:
        pass
    match = _DURATION.match(stripped)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a number with a unit s, m, h or d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_schedule(text: str) -> tuple[timedelta, ...]:
    """Parse a comma-separated list of durations such as ``1m,5m,30m,2h``."""
    parts = [part for part in text.split(",") if part.strip()]
    return tuple(parse_duration(part) for part in parts)


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
