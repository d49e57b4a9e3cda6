"""Rollups for the market overview: 1-minute and 1-hour bars of every symbol in ``market_1m``
and ``market_1h``, recomputed from ``market_10s`` for the buckets that changed.

A refresh recomputes the minutes since the previous one (all of :data:`HORIZON` the first time),
and every older hour in which a candle was written since (a late trade, a reconcile, a batch
load: ``market_10s.updated_at`` has a min-max index, so finding them reads only new granules).
Bookmarks live in ``market_state``, so another process picks up where this one stopped.

The process that writes the store keeps them fresh (:class:`RollupKeeper`, run by the streaming
job every :data:`KEEP_EVERY` seconds); a dashboard in that process refreshes them too (one
refresh at a time per process), and one reading through the read-only share only reads them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptolab.store.client import Store
from cryptolab.store.schema import MARKET_1H, MARKET_1M, MARKET_10S, MARKET_LATEST, MARKET_STATE, TS
from cryptolab.times import to_utc

log = logging.getLogger(__name__)

HORIZON = timedelta(hours=49)
"""How far back from the newest minute the rollups are kept up to date: what the overview reads
(24 h, and a day before that to find a quiet symbol's price)."""
MARGIN = timedelta(seconds=60)
"""Writes that may still be in flight when a refresh starts: looked at again next time."""
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
KEEP_EVERY = 20.0
"""Seconds between two refreshes by the process that writes the store."""
_REFRESH = threading.Lock()
"""One refresh at a time in a process (the streaming job's keeper and a dashboard's)."""


def floor_time(moment: datetime, step: timedelta) -> datetime:
    """``moment`` rounded down to a multiple of ``step`` since the epoch (UTC)."""
    seconds = int(step.total_seconds())
    epoch = int(to_utc(moment).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def newest_window(store: Store) -> datetime | None:
    """Start of the newest candle of any symbol, or None for an empty store."""
    rows = store.query_rows(
        f"SELECT max(window_start), count() FROM {store.table(MARKET_LATEST)}"  # noqa: S608
    )
    return to_utc(rows[0][0]) if rows and rows[0][1] else None


@dataclass
class RefreshReport:
    """What one :func:`refresh_rollups` did."""

    minute: datetime | None = None  # minutes before this one are rolled up
    edge_from: datetime | None = None  # the newest minutes were recomputed from here
    rewritten_hours: int = 0  # older (symbol, hour)s a late write touched, recomputed
    seconds: float = 0.0


def _state(store: Store) -> dict[str, datetime]:
    rows = store.query_rows(
        f"SELECT name, argMax(value, at) FROM {store.table(MARKET_STATE)} GROUP BY name"  # noqa: S608
    )
    return {str(name): to_utc(value) for name, value in rows}


def _save_state(store: Store, values: dict[str, datetime]) -> None:
    import pyarrow as pa

    ts = pa.timestamp("ms", tz="UTC")
    now = datetime.now(UTC)
    store.insert_arrow(
        MARKET_STATE,
        pa.table(
            {
                "name": list(values),
                "value": pa.array(list(values.values()), ts),
                "at": pa.array([now] * len(values), ts),
            }
        ),
    )


def _bars_sql(store: Store, target: str, source: str, time_col: str, unit: str) -> str:
    """INSERT the ``unit`` bars of ``source`` rows with ``lo <= time < hi`` (and, if the
    ``symbols`` parameter is not empty, only those symbols)."""
    return f"""
        INSERT INTO {store.table(target)}
        SELECT CAST(toStartOf{unit}({time_col}) AS {TS}) AS b, symbol,
               argMin(open, {time_col}), argMax(close, {time_col}),
               sum(quote_volume), sum(trades), max(updated_at)
        FROM {store.table(source)} FINAL
        WHERE {time_col} >= {{lo:{TS}}} AND {time_col} < {{hi:{TS}}}
          AND (empty({{symbols:Array(String)}}) OR has({{symbols:Array(String)}}, symbol))
        GROUP BY b, symbol
    """  # noqa: S608 - identifiers only; values are bound parameters


def _roll(
    store: Store, lo: datetime, hi: datetime, symbols: Sequence[str] = (), hours: bool = True
) -> None:
    """Recompute the minute bars of ``[lo, hi)`` hour by hour (each query stays small, so a
    dashboard's own reads wait little), then the hour bars of the complete hours in it."""
    minutes = _bars_sql(store, MARKET_1M, MARKET_10S, "window_start", "Minute")
    chunk = lo
    while chunk < hi:
        end = min(floor_time(chunk, HOUR) + HOUR, hi)
        store.command(minutes, {"lo": chunk, "hi": end, "symbols": list(symbols)})
        chunk = end
    if hours:
        first, last = (
            floor_time(lo, HOUR),
            floor_time(hi, HOUR),
        )  # [first, last): hours now complete
        if last > first:
            sql = _bars_sql(store, MARKET_1H, MARKET_1M, "bucket", "Hour")
            store.command(sql, {"lo": first, "hi": last, "symbols": list(symbols)})


def _rewritten(
    store: Store, since: datetime, lo: datetime, hi: datetime
) -> list[tuple[datetime, list[str]]]:
    """(hour, symbols) whose minute bars in ``[lo, hi)`` miss a candle written after ``since``:
    a minute bar carries the newest ``updated_at`` of its candles, so a candle newer than its
    bar (or without a bar) is one the bar does not include yet."""
    written = store.query_rows(
        f"SELECT symbol, toStartOfMinute(window_start) AS minute, max(updated_at) "  # noqa: S608
        f"FROM {store.table(MARKET_10S)} "
        f"WHERE updated_at > {{since:{TS}}} AND window_start >= {{lo:{TS}}} "
        f"AND window_start < {{hi:{TS}}} GROUP BY symbol, minute",
        {"since": since, "lo": lo, "hi": hi},
    )
    if not written:
        return []
    first = min(to_utc(r[1]) for r in written)
    symbols = sorted({str(r[0]) for r in written})
    bars = store.query_rows(
        f"SELECT symbol, bucket, max(updated_at) FROM {store.table(MARKET_1M)} "  # noqa: S608
        f"WHERE bucket >= {{lo:{TS}}} AND bucket < {{hi:{TS}}} "
        "AND has({symbols:Array(String)}, symbol) GROUP BY symbol, bucket",
        {"lo": first, "hi": hi, "symbols": symbols},
    )
    covered = {(str(s), to_utc(b)): to_utc(u) for s, b, u in bars}
    stale: dict[datetime, set[str]] = {}
    for symbol, minute, updated in written:
        key = (str(symbol), to_utc(minute))
        if key not in covered or covered[key] < to_utc(updated):
            stale.setdefault(floor_time(key[1], HOUR), set()).add(key[0])
    return [(hour, sorted(names)) for hour, names in sorted(stale.items())]


def refresh_rollups(store: Store) -> RefreshReport:
    """Bring ``market_1m`` / ``market_1h`` up to date with ``market_10s``: the minutes since the
    last refresh (all of :data:`HORIZON` the first time), and every older bucket holding a
    candle written since (a late trade, a reconcile, a batch load). Idempotent; the minute still
    open is left to the readers."""
    with _REFRESH:
        return _refresh(store)


def _refresh(store: Store) -> RefreshReport:
    started = time.perf_counter()
    report = RefreshReport()
    newest = newest_window(store)
    if newest is None:
        return report
    wall = datetime.now(UTC)
    minute = floor_time(newest, MINUTE)
    floor = floor_time(minute - HORIZON, HOUR)
    state = _state(store)
    done, since = state.get("minutes_done"), state.get("since")
    edge = done if done is not None and floor <= done <= minute else floor
    if since is not None and edge > floor:
        for hour, symbols in _rewritten(store, since - MARGIN, floor, edge):
            _roll(store, hour, min(hour + HOUR, edge), symbols)
            report.rewritten_hours += len(symbols)
    _roll(store, edge, minute)
    _save_state(store, {"minutes_done": minute, "since": wall})
    report.minute, report.edge_from = minute, edge
    report.seconds = time.perf_counter() - started
    log.debug(
        "market rollups minute=%s edge=%s rewritten_hours=%d seconds=%.3f",
        minute.isoformat(), edge.isoformat(), report.rewritten_hours, report.seconds,
    )  # fmt: skip
    return report


class RollupKeeper:
    """Refreshes the rollups every ``every`` seconds on a daemon thread until :meth:`stop`; a
    failure is logged and tried again next time (the overview then lags, the stream goes on)."""

    def __init__(self, store: Store, every: float = KEEP_EVERY) -> None:
        self.store, self.every = store, every
        self.refreshes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="market-rollups", daemon=True)

    def start(self) -> RollupKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                refresh_rollups(self.store)
                self.refreshes += 1
            except Exception as exc:
                log.warning("refreshing the market rollups failed error=%r", exc)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
