"""Time, one way everywhere: ISO 8601 text in, aware UTC datetimes out, ``...Z`` text back.

A naive datetime means UTC (ClickHouse returns ``DateTime64(3, 'UTC')`` values naive).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Lower bound of an open time range."""
END_OF_TIME = datetime(2200, 1, 1, tzinfo=UTC)
"""Upper bound of an open time range (within ClickHouse's DateTime64)."""
EXAMPLE = "2026-11-01T00:00:00Z"


def to_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_or(moment: datetime | None, default: datetime) -> datetime:
    """:func:`to_utc` of ``moment``, or ``default`` when it is None (an open range end)."""
    return default if moment is None else to_utc(moment)


def parse_utc(text: str) -> datetime:
    """``2026-11-01T00:00:00Z`` (or ``+00:00``, or a date, or no zone = UTC) -> aware UTC.

    Raises ValueError saying what a good value looks like."""
    try:
        return to_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text[:40]!r} (e.g. {EXAMPLE})") from None


def iso_z(moment: datetime) -> str:
    """An aware (or naive = UTC) datetime as ``2026-11-01T00:00:10Z``."""
    return to_utc(moment).isoformat().replace("+00:00", "Z")


def range_params(start: datetime | None, end: datetime | None) -> dict[str, datetime]:
    """Query parameters ``start``/``end`` of ``start <= t < end`` (None = open)."""
    return {"start": utc_or(start, EPOCH), "end": utc_or(end, END_OF_TIME)}


_MS = timedelta(milliseconds=1)
_US = timedelta(microseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (integer arithmetic, no float rounding)."""
    return (to_utc(moment) - EPOCH) // _MS


def epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly."""
    return (to_utc(moment) - EPOCH) // _US


def from_micros(value: int) -> datetime:
    """Microseconds since the epoch -> aware UTC datetime, exactly (no float rounding)."""
    return EPOCH + timedelta(microseconds=value)
