"""Clock arithmetic: ``"HH:MM"`` <-> minutes after midnight. The one place the course does it."""

from __future__ import annotations

MINUTES_PER_DAY = 24 * 60


def time_to_minutes(s: str) -> int:
    """``"HH:MM"`` -> minutes after midnight, checked. Raises ``ValueError`` naming the bad value.

    >>> time_to_minutes("09:30")
    570
    """
    if not isinstance(s, str):
        raise ValueError(f"time must be a 'HH:MM' string, got {s!r}")
    parts = s.strip().split(":")
    if len(parts) != 2 or not all(len(p) == 2 and p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"time must look like 'HH:MM' (two digits each), got {s!r}")
    hours, minutes = int(parts[0]), int(parts[1])
    # 24:00 is allowed as an end of day, nothing later.
    if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
        raise ValueError(f"time out of range (00:00..24:00): {s!r}")
    return hours * 60 + minutes


def clock_minutes(s: str) -> int:
    """``int(HH) * 60 + int(MM)`` with no range check: the public reference's arithmetic.

    Only for reproducing the reference (it accepts ``"99:99"`` as 6039 minutes); the course's
    own code uses :func:`time_to_minutes`.

    >>> clock_minutes("99:99")
    6039
    """
    hours, minutes = s.split(":")
    return int(hours) * 60 + int(minutes)


def minutes_to_time(m: int) -> str:
    """Minutes after midnight -> ``"HH:MM"`` (0..1440).

    >>> minutes_to_time(570)
    '09:30'
    """
    if isinstance(m, bool) or not isinstance(m, int):
        raise ValueError(f"minutes must be an int, got {m!r}")
    if not 0 <= m <= MINUTES_PER_DAY:
        raise ValueError(f"minutes out of range 0..{MINUTES_PER_DAY}: {m!r}")
    return f"{m // 60:02d}:{m % 60:02d}"
