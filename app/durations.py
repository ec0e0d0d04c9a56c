"""Human durations used by settings and API bodies: ``30s``, ``5m``, ``2h``, ``30d``."""

import math
import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """Parse ``<number><unit>``; a bare number means seconds."""
    stripped = text.strip()
    match = _DURATION.match(stripped)
    if match is not None:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        try:
            seconds = float(stripped)
        except ValueError:
            raise ValueError(
                f"invalid duration {text!r}: use a number with a unit ms, s, m, h or d"
            ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must be a finite, non-negative length")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long") from None


def parse_schedule(text: str) -> tuple[timedelta, ...]:
    """Parse a comma-separated list of durations such as ``1m,5m,30m,2h``."""
    parts = [part for part in text.split(",") if part.strip()]
    return tuple(parse_duration(part) for part in parts)


def format_duration(value: timedelta) -> str:
    # Whole microseconds, not total_seconds() with ":g", which kept only 6 significant
    # digits (1234567s became "1.23457e+06s", which parse_duration cannot read back).
    micros = value // timedelta(microseconds=1)
    for unit in ("d", "h", "m"):
        size = round(_UNIT_SECONDS[unit]) * 1_000_000
        if micros >= size and micros % size == 0:
            return f"{micros // size}{unit}"
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), 1_000_000)
    return sign + f"{whole}.{fraction:06d}".rstrip("0").rstrip(".") + "s"
