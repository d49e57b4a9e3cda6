"""What the chart shows: intervals, time ranges, and the full or incremental read of the store.

A chart *view* is (symbol, interval, range). A full read returns every candle of the visible
range; a live tick reads only what changed since the last shown candle (the still-open candle and
any new ones) and how many old candles slid out of the range, so the browser receives a small
``Patch`` instead of a new figure. Data comes only through :mod:`cryptolab.store.queries`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from cryptolab.store import Store
from cryptolab.store import queries as q
from cryptolab.times import epoch_ms, parse_utc

RANGES: dict[str, int | None] = {
    "15m": 15 * 60,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "custom": None,
}
"""Time range choices -> seconds (``custom`` takes a start and an end)."""

MAX_CANDLES = 10_000
"""Most candles one chart holds; a longer custom range shows its newest ones."""

MAX_PATCH_CANDLES = 60
"""A tick that would add more candles than this redraws the whole figure instead."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval_seconds(interval: str) -> int | None:
    """``"10s"`` -> 10, ``"5m"`` -> 300, ``"1h"`` -> 3600, ``"1d"`` -> 86400; None if unreadable."""
    match = re.fullmatch(r"(\d+)([smhd])", interval)
    if not match:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]


def available_intervals() -> list[str]:
    """The intervals the store can answer (``queries.INTERVALS``), shortest first."""
    known = [i for i in q.INTERVALS if interval_seconds(i)]
    return sorted(known, key=lambda i: interval_seconds(i) or 0)


def parse_time(text: str | None) -> datetime | None:
    """A user's time: ISO 8601 (``2026-11-01 00:05``, ``2026-11-01T00:05:00Z``); naive is UTC.

    Raises ValueError with a message meant for the user.
    """
    if text is None or not text.strip():
        return None
    return parse_utc(text)


def _floor(value: datetime, seconds: int) -> datetime:
    epoch = int(value.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


@dataclass(frozen=True)
class ChartView:
    """The candles a chart holds, kept in the browser (``dcc.Store``) between ticks.

    The figure holds exactly the candles with ``lo_ms <= window_start <= last_ms``; ``count`` of
    them. ``live`` views follow new data; a custom range stays where it is.
    """

    key: str
    symbol: str
    interval: str
    range_key: str
    custom_start: str
    custom_end: str
    interval_s: int
    range_s: int
    lo_ms: int
    last_ms: int
    count: int
    live: bool
    last_sig: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def request(self) -> Request:
        return Request(
            self.symbol, self.interval, self.range_key, self.custom_start, self.custom_end
        )

    @classmethod
    def from_dict(cls, data: Any) -> ChartView | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(**data)
        except TypeError:
            return None


@dataclass(frozen=True)
class Request:
    """What the user asked the chart for."""

    symbol: str
    interval: str
    range_key: str
    custom_start: str = ""
    custom_end: str = ""

    @property
    def key(self) -> str:
        return "|".join(asdict(self).values())


@dataclass(frozen=True)
class FullRead:
    candles: pd.DataFrame
    view: ChartView | None
    note: str
    """Why the chart is empty, or what it shows when that needs saying ("" otherwise)."""


def read_full(store: Store, request: Request) -> FullRead:
    """Every candle of the visible range. ``ValueError`` carries a message for the user."""
    symbol, interval, range_key = request.symbol, request.interval, request.range_key
    step = interval_seconds(interval)
    if interval not in q.INTERVALS or step is None:
        raise ValueError(f"unknown interval {interval[:20]!r}")
    if range_key not in RANGES:
        raise ValueError(f"unknown time range {range_key[:20]!r}")
    empty = pd.DataFrame()
    bounds = q.candle_bounds(store, symbol)
    if bounds is None:
        return FullRead(empty, None, f"No candles for {symbol[:40]!r} yet")
    range_s = RANGES[range_key]
    if range_s is None:
        start, end = parse_time(request.custom_start), parse_time(request.custom_end)
        if start is not None and end is not None and end <= start:
            return FullRead(empty, None, "Empty range: the end is not after the start")
        frame = q.candles(store, symbol, interval, start, end, last=MAX_CANDLES)
        if frame.empty:
            return FullRead(empty, None, f"No {symbol[:40]} candles in this range")
        note = f"newest {MAX_CANDLES:,} candles of the range" if len(frame) >= MAX_CANDLES else ""
        return FullRead(frame, _view(request, step, 0, frame, False), note)
    count = min(max(1, range_s // step), MAX_CANDLES)
    anchor = _floor(bounds[1], step)
    lo = anchor - timedelta(seconds=(count - 1) * step)
    frame = q.candles(store, symbol, interval, start=lo)
    if frame.empty:
        return FullRead(empty, None, f"No candles for {symbol[:40]!r} yet")
    view = _view(request, step, range_s, frame, True, lo_ms=epoch_ms(lo))
    return FullRead(frame, view, "")


def _view(
    request: Request,
    step: int,
    range_s: int,
    frame: pd.DataFrame,
    live: bool,
    lo_ms: int | None = None,
) -> ChartView:
    starts = frame["window_start"]
    return ChartView(
        key=request.key,
        **asdict(request),
        interval_s=step,
        range_s=range_s,
        lo_ms=epoch_ms(starts.iloc[0]) if lo_ms is None else lo_ms,
        last_ms=epoch_ms(starts.iloc[-1]),
        count=len(frame),
        live=live,
        last_sig=signature(frame),
    )


@dataclass(frozen=True)
class Increment:
    """What changed since a view: ``candles`` (rows of ``queries.CHART_COLUMNS``) from the last
    shown one on (with ``replaced`` = 1 the first row replaces the last shown candle), and
    ``trim`` old candles that left the range.
    """

    candles: Sequence[tuple[Any, ...]]
    trim: int
    replaced: int
    view: ChartView

    @property
    def unchanged(self) -> bool:
        return not self.candles and self.trim == 0


def _signature(window_start: Any, high: Any, low: Any, close: Any, trades: Any) -> str:
    text = f"{epoch_ms(window_start)}|{high}|{low}|{close}|{int(trades)}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def signature(frame: pd.DataFrame) -> str:
    """A fingerprint of the newest candle, to skip ticks where nothing changed (16 hex digits:
    it travels to the browser and back every second)."""
    if frame.empty:
        return ""
    row = frame.iloc[-1]
    return _signature(*(row[c] for c in ("window_start", "high", "low", "close", "trades")))


def row_signature(row: tuple[Any, ...]) -> str:
    """:func:`signature` of one ``queries.CHART_COLUMNS`` row."""
    _, _, high, low, close, _, _, _, trades = row
    return _signature(row[0], high, low, close, trades)


def read_increment(store: Store, view: ChartView) -> Increment | None:
    """The candles since the last shown one and how many leading candles to drop.

    None means the figure must be redrawn in full (too much changed, or it no longer fits).
    """
    since = datetime.fromtimestamp(view.last_ms / 1000, tz=UTC)
    fresh = q.chart_rows(store, view.symbol, view.interval, since)
    if len(fresh) > MAX_PATCH_CANDLES:
        return None
    if not fresh or (len(fresh) == 1 and row_signature(fresh[0]) == view.last_sig):
        return Increment([], 0, 0, view)
    last_ms = epoch_ms(fresh[-1][0])
    count = min(max(1, view.range_s // view.interval_s), MAX_CANDLES)
    lo_ms = max(view.lo_ms, last_ms - (count - 1) * view.interval_s * 1000)
    trim = 0
    if lo_ms > view.lo_ms:
        trim = q.count_candles(
            store,
            view.symbol,
            view.interval,
            start=datetime.fromtimestamp(view.lo_ms / 1000, tz=UTC),
            end=datetime.fromtimestamp(lo_ms / 1000, tz=UTC),
        )
    replaced = 1 if epoch_ms(fresh[0][0]) == view.last_ms else 0
    count_after = view.count - trim + len(fresh) - replaced
    if trim >= view.count or count_after <= 0:
        return None
    new_view = replace(
        view, lo_ms=lo_ms, last_ms=last_ms, count=count_after, last_sig=row_signature(fresh[-1])
    )
    return Increment(fresh, trim, replaced, new_view)
