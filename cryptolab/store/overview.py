"""The whole market at a glance: one row per symbol with its last price, change over 1 h and
24 h, quote volume and trades over 24 h, trades/s and a 1 h sparkline.

Cost does not grow with trades, and stays small with thousands of symbols, because nothing here
reads raw trades or the symbol-first ``candles_10s``:

* ``market_latest`` (a materialized view) holds each symbol's newest candle: the live price;
* ``market_10s`` (a materialized view, ordered time first) holds the candles again, so the
  minute still open is one contiguous range of a few rows per symbol;
* ``market_1m`` and ``market_1h`` hold 1-minute and 1-hour bars, recomputed by
  :func:`refresh_rollups` for the buckets that changed (the newest minutes, and any older window
  a late write replaced), so a 24 h figure sums ~24 hour bars and ~two hours of minute bars.

Definitions (``M`` is the minute of the newest candle in the store, every symbol's clock):

* ``last``: the close of the symbol's newest candle;
* price *as of* ``t``: the close of the symbol's newest candle that starts before ``t`` (= the
  price of its last trade before ``t``); searched up to :data:`LOOKBACK` back;
* change over 1 h / 24 h: ``last`` against the price as of ``M - 1 h`` / ``M - 24 h``, in
  percent. A symbol without a price then (listed since, or quiet longer than the lookback) is
  compared with the open of its first candle since, and marked ``partial``;
* quote volume and trades over 24 h: candles from ``M - 24 h`` on, the open minute included;
* trades/s: the trades of the last complete minute (``M - 1 min``) / 60;
* sparkline: the price as of the end of each of the 60 minutes before ``M``, then ``last``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cryptolab.store.client import Store
from cryptolab.store.rollups import MINUTE, floor_time, newest_window, refresh_rollups
from cryptolab.store.schema import MARKET_1H, MARKET_1M, MARKET_10S, MARKET_LATEST, TS
from cryptolab.times import to_utc

log = logging.getLogger(__name__)

LOOKBACK = timedelta(hours=24)
"""How far before ``M - 24 h`` (or ``M - 1 h``) a quiet symbol's price is searched."""
SPARK_MINUTES = 60
_FINAL = " SETTINGS do_not_merge_across_partitions_select_final = 1"


@dataclass(frozen=True)
class MarketRow:
    """One symbol in the overview (see the module docstring for the definitions)."""

    symbol: str
    last: float
    last_time: datetime
    change_1h: float | None  # percent
    change_1h_partial: bool
    change_24h: float | None  # percent
    change_24h_partial: bool
    quote_volume_24h: float
    trades_24h: int
    trades_per_s: float
    spark: tuple[float, ...]  # price as of each minute's end, oldest first, then ``last``


@dataclass(frozen=True)
class MarketSnapshot:
    """Every symbol, as of ``newest`` (the newest candle). ``complete`` is False while the
    rolled-up part (everything before ``minute``) is not computed yet: the rows then hold only
    the last price and the open minute."""

    newest: datetime | None
    minute: datetime | None
    rows: tuple[MarketRow, ...]
    complete: bool


@dataclass
class _Base:
    """Per-symbol figures of the rolled-up part, everything before ``minute``."""

    minute: datetime
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)


def _hours_part(store: Store, minute: datetime) -> list[tuple[Any, ...]]:
    return store.query_rows(
        f"""
        WITH {{m:{TS}}} AS M, toStartOfHour(M - INTERVAL 24 HOUR) AS h24,
             toStartOfHour(M - INTERVAL 1 HOUR) AS h1, h24 + INTERVAL 1 HOUR AS h24n
        SELECT symbol,
               sumIf(quote_volume, bucket >= h24n), sumIf(trades, bucket >= h24n),
               argMaxIf(close, bucket, bucket < h24), countIf(bucket < h24),
               argMaxIf(close, bucket, bucket < h1), countIf(bucket < h1),
               argMinIf(open, bucket, bucket >= h24n), minIf(bucket, bucket >= h24n)
        FROM {store.table(MARKET_1H)} FINAL
        WHERE bucket >= h24 - {{lookback:UInt32}} AND bucket < toStartOfHour(M)
        GROUP BY symbol
        """  # noqa: S608 - identifiers only; values are bound parameters
        + _FINAL,
        {"m": minute, "lookback": int(LOOKBACK.total_seconds())},
    )


def _minutes_part(store: Store, minute: datetime) -> list[tuple[Any, ...]]:
    return store.query_rows(
        f"""
        WITH {{m:{TS}}} AS M, toStartOfHour(M) AS H, M - INTERVAL 24 HOUR AS t24,
             M - INTERVAL 1 HOUR AS t1, toStartOfHour(t24) AS h24,
             toStartOfHour(t1) AS h1, h24 + INTERVAL 1 HOUR AS h24n
        SELECT symbol,
               sumIf(quote_volume, (bucket >= t24 AND bucket < h24n) OR bucket >= H),
               sumIf(trades, (bucket >= t24 AND bucket < h24n) OR bucket >= H),
               argMaxIf(close, bucket, bucket >= h24 AND bucket < t24),
               countIf(bucket >= h24 AND bucket < t24),
               argMaxIf(close, bucket, bucket >= h1 AND bucket < t1),
               countIf(bucket >= h1 AND bucket < t1),
               argMinIf(open, bucket, bucket >= t24 AND bucket < h24n),
               minIf(bucket, bucket >= t24 AND bucket < h24n),
               argMinIf(open, bucket, bucket >= H), minIf(bucket, bucket >= H),
               argMinIf(open, bucket, bucket >= t1), minIf(bucket, bucket >= t1),
               sumIf(trades, bucket = M - INTERVAL 1 MINUTE),
               groupArrayIf((toUInt8(dateDiff('minute', t1, bucket)), toFloat64(close)),
                            bucket >= t1)
        FROM {store.table(MARKET_1M)} FINAL
        WHERE (bucket >= h24 AND bucket < h24n) OR (bucket >= h1 AND bucket < M)
        GROUP BY symbol
        """  # noqa: S608 - identifiers only; values are bound parameters
        + _FINAL,
        {"m": minute},
    )


def _live_part(store: Store, minute: datetime) -> list[tuple[Any, ...]]:
    return store.query_rows(
        f"""
        SELECT l.symbol, l.close, l.window_start, o.qv, o.n, o.first_open, o.first_time
        FROM (SELECT symbol, close, window_start FROM {store.table(MARKET_LATEST)} FINAL) AS l
        LEFT JOIN (
            SELECT symbol, sum(quote_volume) AS qv, sum(trades) AS n,
                   argMin(open, window_start) AS first_open, min(window_start) AS first_time
            FROM {store.table(MARKET_10S)} FINAL
            WHERE window_start >= {{m:{TS}}} GROUP BY symbol
        ) AS o ON l.symbol = o.symbol
        SETTINGS join_use_nulls = 1
        """,  # noqa: S608 - identifiers only; values are bound parameters
        {"m": minute},
    )


def _present(moment: Any) -> bool:
    """``minIf`` over no rows answers the epoch: that is no time."""
    return moment is not None and to_utc(moment).year > 1970


def _earliest(candidates: list[tuple[Any, Any]]) -> Any:
    """The open of the earliest (open, time) candidate whose time is present, or None."""
    present = [(to_utc(t), o) for o, t in candidates if _present(t)]
    return min(present, key=lambda item: item[0])[1] if present else None


def _base(store: Store, minute: datetime) -> _Base:
    """The rolled-up figures of every symbol for the overview at ``minute``."""
    base = _Base(minute)
    for s, qv, n, r24, n24, r1, n1, f_open, f_time in _hours_part(store, minute):
        base.figures[str(s)] = {
            "qv": Decimal(qv), "n": int(n), "ref24": r24 if n24 else None,
            "ref1": r1 if n1 else None, "first24": [(f_open, f_time)], "first1": [],
            "last_minute": 0, "spark": {},
        }  # fmt: skip
    for row in _minutes_part(store, minute):
        s, qv, n, r24, n24, r1, n1, a_open, a_time, c_open, c_time, o1, t1, lm, spark = row
        fig = base.figures.setdefault(str(s), _empty_figures())
        fig["qv"] += Decimal(qv)
        fig["n"] += int(n)
        if n24:  # a minute bar of the partial hour is nearer than any hour bar
            fig["ref24"] = r24
        if n1:
            fig["ref1"] = r1
        fig["first24"] += [(a_open, a_time), (c_open, c_time)]
        fig["first1"] = [(o1, t1)]
        fig["last_minute"] = int(lm)
        fig["spark"] = dict(spark)
    return base


def _empty_figures() -> dict[str, Any]:
    return {
        "qv": Decimal(0), "n": 0, "ref24": None, "ref1": None, "first24": [], "first1": [],
        "last_minute": 0, "spark": {},
    }  # fmt: skip


def _spark(ref: Any, closes: dict[int, float], last: float) -> tuple[float, ...]:
    """The price as of the end of each of the SPARK_MINUTES minutes (carried over quiet
    minutes, omitted before the first known price), then ``last``."""
    points: list[float] = []
    price = float(ref) if ref is not None else None
    for slot in range(SPARK_MINUTES):
        price = closes.get(slot, price)
        if price is not None:
            points.append(price)
    return (*points, last)


def _change(last: float, reference: Any) -> float | None:
    ref = float(reference) if reference is not None else 0.0
    return (last / ref - 1.0) * 100.0 if ref else None


def _row(live: tuple[Any, ...], fig: dict[str, Any]) -> MarketRow:
    symbol, close, newest, qv, n, first_open, first_time = live
    last = float(close)
    opened = [(first_open, first_time)]
    ref24 = fig["ref24"] if fig["ref24"] is not None else _earliest(fig["first24"] + opened)
    ref1 = fig["ref1"] if fig["ref1"] is not None else _earliest(fig["first1"] + opened)
    return MarketRow(
        symbol=str(symbol),
        last=last,
        last_time=to_utc(newest),
        change_1h=_change(last, ref1),
        change_1h_partial=fig["ref1"] is None,
        change_24h=_change(last, ref24),
        change_24h_partial=fig["ref24"] is None,
        quote_volume_24h=float(fig["qv"] + (Decimal(qv) if qv is not None else 0)),
        trades_24h=fig["n"] + (int(n) if n is not None else 0),
        trades_per_s=fig["last_minute"] / 60.0,
        spark=_spark(fig["ref1"], fig["spark"], last),
    )


def _assemble(store: Store, base: _Base | None, minute: datetime) -> MarketSnapshot:
    """Rows from the rolled-up ``base`` (None: not computed yet) and the live part after it."""
    live = _live_part(store, base.minute if base is not None else minute)
    figures = base.figures if base is not None else {}
    rows = tuple(
        _row(r, figures.get(str(r[0])) or _empty_figures())
        for r in sorted(live, key=lambda r: str(r[0]))
    )
    newest = max((row.last_time for row in rows), default=None)
    at = base.minute if base is not None else minute
    return MarketSnapshot(newest, at, rows, base is not None)


def snapshot(store: Store) -> MarketSnapshot:
    """The overview of ``store`` now, read synchronously (rollups refreshed first). A dashboard
    uses :class:`MarketOverview`, which keeps the slow part off its requests."""
    refresh_rollups(store)
    newest = newest_window(store)
    if newest is None:
        return MarketSnapshot(None, None, (), True)
    minute = floor_time(newest, MINUTE)
    return _assemble(store, _base(store, minute), minute)


class MarketOverview:
    """The overview of one store, kept ready for a dashboard.

    :meth:`snapshot` costs two small reads (each symbol's newest candle, and the minute still
    open). The rolled-up part changes once a minute (or when a late write lands): a background
    thread refreshes the rollups and recomputes it while requests go on with the previous one,
    so no request waits for it (except the very first, with ``wait``).
    """

    def __init__(self, store: Store, recheck_seconds: float = 5.0) -> None:
        self.store = store
        self.recheck_seconds = recheck_seconds
        self.error: str | None = None
        self._base: _Base | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def snapshot(self, wait: bool = False) -> MarketSnapshot:
        """Every symbol now. ``wait`` computes a missing or outdated rolled-up part first;
        without it the snapshot may be a minute behind on the 24 h figures (or lack them, with
        ``complete`` False, until the first computation ends)."""
        newest = newest_window(self.store)
        if newest is None:
            return MarketSnapshot(None, None, (), True)
        minute = floor_time(newest, MINUTE)
        base = self._base
        due = base is None or base.minute != minute
        due = due or time.monotonic() - self._checked > self.recheck_seconds
        if due and wait:
            self._update(minute)
            base = self._base
        elif due:
            self._start(minute)
        return _assemble(self.store, base, minute)

    def _start(self, minute: datetime) -> None:
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                return
            self._worker = threading.Thread(
                target=self._update, args=(minute,), name="market-overview", daemon=True
            )
            self._worker.start()

    def _update(self, minute: datetime) -> None:
        self._checked = time.monotonic()
        try:
            report = refresh_rollups(self.store)
            if self._base is None or self._base.minute != minute or report.rewritten_hours:
                self._base = _base(self.store, minute)
            self.error = None
        except Exception as exc:  # the next snapshot tries again; the page says why
            log.warning("market overview refresh failed", exc_info=True)
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
