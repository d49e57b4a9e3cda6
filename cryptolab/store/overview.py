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
* sparkline: the price as of the end of each of the 60 minutes before ``M`` (it moves once a
  minute; ``last`` is the live price).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from cryptolab.store.client import Store
from cryptolab.store.rollups import (
    MINUTE,
    RefreshReport,
    floor_time,
    newest_window,
    refresh_rollups,
)
from cryptolab.store.schema import MARKET_1H, MARKET_1M, MARKET_10S, MARKET_LATEST, TS
from cryptolab.times import to_utc

log = logging.getLogger(__name__)

LOOKBACK = timedelta(hours=24)
"""How far before ``M - 24 h`` (or ``M - 1 h``) a quiet symbol's price is searched."""
SPARK_MINUTES = 60
_FINAL = " SETTINGS do_not_merge_across_partitions_select_final = 1"


class MarketRow(NamedTuple):
    """One symbol in the overview (see the module docstring for the definitions). A named
    tuple: thousands are made every second."""

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
    spark: tuple[float, ...]  # price as of each minute's end, oldest first


@dataclass(frozen=True)
class MarketSnapshot:
    """Every symbol, as of ``newest`` (the newest candle). ``complete`` is False while the
    rolled-up part (everything before ``minute``) is not computed yet: the rows then hold only
    the last price and the open minute."""

    newest: datetime | None
    minute: datetime | None
    rows: tuple[MarketRow, ...]
    complete: bool


@dataclass(frozen=True)
class _Figures:
    """One symbol's rolled-up figures (everything before the base minute), as plain numbers."""

    quote_volume: Decimal
    trades: int
    ref_1h: float | None  # price as of M - 1 h (None: no candle before)
    ref_24h: float | None
    first_1h: tuple[int, float] | None  # (epoch ms, open) of the first candle after M - 1 h
    first_24h: tuple[int, float] | None
    last_minute_trades: int
    spark: tuple[float, ...]


_NONE = _Figures(Decimal(0), 0, None, None, None, None, 0, ())


@dataclass
class _Base:
    """Per-symbol figures of the rolled-up part, everything before ``minute``; with ``rows``
    (every symbol as of then) a tick only recomputes the symbols that traded since."""

    minute: datetime
    figures: dict[str, _Figures] = field(default_factory=dict)
    rows: dict[str, MarketRow] = field(default_factory=dict)
    newest: datetime | None = None


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


def _latest_part(store: Store) -> list[tuple[Any, ...]]:
    return store.query_rows(
        f"SELECT symbol, toFloat64(close), window_start "  # noqa: S608 - identifiers only
        f"FROM {store.table(MARKET_LATEST)} FINAL"
    )


def _open_part(store: Store, minute: datetime) -> dict[str, tuple[Any, ...]]:
    """symbol -> (quote volume, trades, first open, its time, last close, its time) of the
    candles from ``minute`` on."""
    rows = store.query_rows(
        f"SELECT symbol, toFloat64(sum(quote_volume)), sum(trades), "  # noqa: S608
        f"toFloat64(argMin(open, window_start)), min(window_start), "
        f"toFloat64(argMax(close, window_start)), max(window_start) "
        f"FROM {store.table(MARKET_10S)} FINAL WHERE window_start >= {{m:{TS}}} GROUP BY symbol",
        {"m": minute},
    )
    return {str(r[0]): r[1:] for r in rows}


def _ms(moment: Any) -> int | None:
    """Epoch ms of a time from the store; ``minIf`` over no rows answers the epoch: None."""
    if moment is None:
        return None
    ms = int(to_utc(moment).timestamp() * 1000)
    return ms if ms > 0 else None


def _first(*candidates: tuple[Any, Any]) -> tuple[int, float] | None:
    """The earliest (epoch ms, open) of (open, time) candidates whose time is present."""
    present = [(ms, float(o)) for o, t in candidates if (ms := _ms(t)) is not None]
    return min(present) if present else None


def _carried(ref: float | None, closes: dict[int, float]) -> tuple[float, ...]:
    """The price as of the end of each of the SPARK_MINUTES minutes: a minute without a bar
    keeps the price before it; minutes before any known price are left out."""
    points: list[float] = []
    price = ref
    for slot in range(SPARK_MINUTES):
        price = closes.get(slot, price)
        if price is not None:
            points.append(price)
    return tuple(points)


def _base(store: Store, minute: datetime) -> _Base:
    """The rolled-up figures of every symbol for the overview at ``minute``."""
    hours = {str(r[0]): r[1:] for r in _hours_part(store, minute)}
    minutes = {str(r[0]): r[1:] for r in _minutes_part(store, minute)}
    base = _Base(minute)
    for symbol in hours.keys() | minutes.keys():
        h_qv, h_n, h_r24, h_n24, h_r1, h_n1, h_open, h_time = hours.get(
            symbol, (0, 0, None, 0, None, 0, None, None)
        )
        m = minutes.get(symbol)
        m_qv, m_n, m_r24, m_n24, m_r1, m_n1 = m[:6] if m else (0, 0, None, 0, None, 0)
        ref_24h = m_r24 if m_n24 else h_r24 if h_n24 else None  # a minute bar is nearer
        ref_1h = m_r1 if m_n1 else h_r1 if h_n1 else None
        ref1 = float(ref_1h) if ref_1h is not None else None
        base.figures[symbol] = _Figures(
            quote_volume=Decimal(h_qv) + Decimal(m_qv),
            trades=int(h_n) + int(m_n),
            ref_1h=ref1,
            ref_24h=float(ref_24h) if ref_24h is not None else None,
            first_1h=_first((m[10], m[11])) if m else None,
            first_24h=_first((h_open, h_time), *([(m[6], m[7]), (m[8], m[9])] if m else [])),
            last_minute_trades=int(m[12]) if m else 0,
            spark=_carried(ref1, dict(m[13]) if m else {}),
        )
    return base


def _row(
    symbol: str, last: float, newest: datetime, fig: _Figures, live: tuple[Any, ...] | None
) -> MarketRow:
    """One symbol's row: its rolled-up figures and what the open minute added (the per-tick
    path for every symbol that traded: plain float arithmetic)."""
    qv, n = float(fig.quote_volume), fig.trades
    if live is not None:
        qv, n = qv + live[0], n + int(live[1])
    ref_1h, ref_24h = fig.ref_1h, fig.ref_24h
    if ref_1h is None or ref_24h is None:  # partial: against the first price since
        first = _first((live[2], live[3])) if live is not None else None
        if ref_1h is None:
            ref_1h = _open_of(fig.first_1h, first)
        if ref_24h is None:
            ref_24h = _open_of(fig.first_24h, first)
    return MarketRow(
        symbol=symbol,
        last=last,
        last_time=newest if newest.tzinfo else newest.replace(tzinfo=UTC),
        change_1h=(last / ref_1h - 1.0) * 100.0 if ref_1h else None,
        change_1h_partial=fig.ref_1h is None,
        change_24h=(last / ref_24h - 1.0) * 100.0 if ref_24h else None,
        change_24h_partial=fig.ref_24h is None,
        quote_volume_24h=qv,
        trades_24h=n,
        trades_per_s=fig.last_minute_trades / 60.0,
        spark=fig.spark,
    )


def _open_of(*firsts: tuple[int, float] | None) -> float | None:
    """The open of the earliest of the (epoch ms, open) candidates."""
    present = [f for f in firsts if f is not None]
    return min(present)[1] if present else None


def _assemble(store: Store, base: _Base | None, minute: datetime) -> MarketSnapshot:
    """Rows from the rolled-up ``base`` (None: not computed yet) and the live part after it."""
    at = base.minute if base is not None else minute
    latest = sorted(_latest_part(store))
    live = _open_part(store, at)
    figures = base.figures if base is not None else {}
    rows = tuple(
        _row(symbol, last, newest, figures.get(symbol, _NONE), live.get(symbol))
        for symbol, last, newest in latest
    )
    newest = to_utc(max(r[2] for r in latest)) if latest else None
    return MarketSnapshot(newest, at, rows, base is not None)


def snapshot(store: Store) -> MarketSnapshot:
    """The overview of ``store`` now, read synchronously (rollups refreshed first). A dashboard
    uses :class:`MarketOverview`, which keeps the slow part off its requests."""
    if store.shared is None:  # read through the share, the writing process keeps them
        refresh_rollups(store)
    newest = newest_window(store)
    if newest is None:
        return MarketSnapshot(None, None, (), True)
    minute = floor_time(newest, MINUTE)
    return _assemble(store, _base(store, minute), minute)


class MarketOverview:
    """The overview of one store, kept ready for a dashboard.

    A :meth:`snapshot` reads one small range: the candles of the minute still open (a few
    thousand rows, time first), and recomputes the rows of the symbols in it; every other row
    comes from the rolled-up part. That part changes once a minute (or when a late write
    lands): a background thread refreshes the rollups and recomputes it on its own connection
    (``worker``; for chDB a second connection to the same engine, whose queries run beside the
    page's), while requests go on with the previous one.
    """

    def __init__(
        self,
        store: Store,
        worker: Callable[[], Store] | None = None,
        recheck_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self._open_worker = worker
        self.worker = store  # replaced by ``worker()`` when the first computation starts
        self.recheck_seconds = recheck_seconds
        self.error: str | None = None
        self._base: _Base | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def snapshot(self, wait: bool = False) -> MarketSnapshot:
        """Every symbol now. ``wait`` computes a missing or outdated rolled-up part first;
        without it the 24 h figures may lag a minute behind (or be missing, with ``complete``
        False, until the first computation ends)."""
        base = self._base
        if base is None or wait:
            newest = newest_window(self.store)
            if newest is None:
                return MarketSnapshot(None, None, (), True)
            minute = floor_time(newest, MINUTE)
            if wait:
                self._update(minute)
                return self.snapshot()
            self._start(minute)
            return _assemble(self.store, None, minute)
        live = _open_part(self.store, base.minute)
        newest = max((to_utc(v[5]) for v in live.values()), default=base.newest)
        minute = floor_time(newest, MINUTE) if newest else base.minute
        if minute != base.minute or time.monotonic() - self._checked > self.recheck_seconds:
            self._start(minute)
        rows = dict(base.rows)
        for symbol, values in live.items():
            fig = base.figures.get(symbol, _NONE)
            rows[symbol] = _row(symbol, values[4], values[5], fig, values)
        ordered = tuple(rows[s] for s in sorted(rows))
        return MarketSnapshot(newest, base.minute, ordered, True)

    def join(self, timeout: float | None = None) -> None:
        """Wait for a background computation to end (before closing the store)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _start(self, minute: datetime) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._checked = time.monotonic()
            self._thread = threading.Thread(
                target=self._update, args=(minute,), name="market-overview", daemon=True
            )
            self._thread.start()

    def _update(self, minute: datetime) -> None:
        self._checked = time.monotonic()
        try:
            if self._open_worker is not None:  # opened on first use, not with the dashboard
                opener, self._open_worker = self._open_worker, None
                self.worker = opener()
            # read through the share, the rollups are the writing process's to keep (read-only)
            shared = self.worker.shared is not None
            report = RefreshReport() if shared else refresh_rollups(self.worker)
            base = self._base
            if shared or base is None or base.minute != minute or report.rewritten_hours:
                self._base = _base_with_rows(self.worker, minute)
            self.error = None
        except Exception as exc:  # the next snapshot tries again; the page says why
            log.warning("market overview refresh failed", exc_info=True)
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _base_with_rows(store: Store, minute: datetime) -> _Base:
    """:func:`_base` and every symbol's row as of ``minute`` (newest candle, no open minute)."""
    base = _base(store, minute)
    latest = _latest_part(store)
    for symbol, last, newest in latest:
        name = str(symbol)
        base.rows[name] = _row(name, last, newest, base.figures.get(name, _NONE), None)
    base.newest = to_utc(max(r[2] for r in latest)) if latest else None
    return base
