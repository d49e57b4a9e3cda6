"""Read functions over the store. Every user-supplied value is a bound query parameter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from cryptolab.model import CANDLE_COLUMNS
from cryptolab.store.client import Store
from cryptolab.store.schema import CANDLES_10S, HISTORY_FILES, TRADES, TS
from cryptolab.times import EPOCH, range_params, to_utc, utc_or

INTERVAL_SECONDS = {"10s": 10, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
INTERVALS = tuple(INTERVAL_SECONDS)
"""Candle intervals available to queries. 10s is stored; larger ones are merged exactly from the
10 s candles in ClickHouse (open of the first sub-window, close of the last, sums of the rest)."""


def _check_interval(interval: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; available: {', '.join(INTERVALS)}")


def candles(
    store: Store,
    symbol: str,
    interval: str = "10s",
    start: datetime | None = None,
    end: datetime | None = None,
    last: int | None = None,
) -> pd.DataFrame:
    """Candles of ``symbol`` with ``start <= window_start < end``, ordered by window_start.

    ``last`` keeps only the newest N windows. Columns: CANDLE_COLUMNS plus window_end.
    """
    _check_interval(interval)
    params: dict[str, Any] = {
        "symbol": symbol,
        **range_params(start, end),
        "seconds": INTERVAL_SECONDS[interval],
    }
    sql = _candles_10s_sql(store) if interval == "10s" else _rollup_sql(store)
    if last is not None:
        sql += "ORDER BY window_start DESC LIMIT {last:UInt32}"
        params["last"] = int(last)
    else:
        sql += "ORDER BY window_start"
    frame = store.query_arrow(sql, params).to_pandas()
    if last is not None:
        frame = frame.iloc[::-1].reset_index(drop=True)
    return frame


CHART_COLUMNS = (
    "window_start",
    "open",
    "high",
    "low",
    "close",
    "vwap",
    "volume",
    "buy_volume",
    "trades",
)
"""What a chart draws of a candle, in the order of :func:`chart_rows`' tuples."""


def chart_rows(
    store: Store,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime | None = None,
) -> list[tuple[Any, ...]]:
    """The :data:`CHART_COLUMNS` of ``symbol``'s candles with ``start <= window_start < end``,
    oldest first, as plain rows: the read of a live chart's tick (a few candles, every second).

    Only the columns a chart shows, one thread and no DataFrame: about half the cost of
    :func:`candles` for the newest two candles of a 30-day store (reports/profiles/).
    """
    sql, params = _chart_sql(store, symbol, interval, start, end, CHART_COLUMNS)
    return store.query_rows(sql + "ORDER BY window_start SETTINGS max_threads = 1", params)


def count_candles(store: Store, symbol: str, interval: str, start: datetime, end: datetime) -> int:
    """How many of ``symbol``'s candles have ``start <= window_start < end``."""
    sql, params = _chart_sql(store, symbol, interval, start, end, ("window_start",))
    count = f"SELECT count() FROM ({sql}) SETTINGS max_threads = 1"  # noqa: S608 - identifiers
    rows = store.query_rows(count, params)
    return int(rows[0][0]) if rows else 0


def _chart_sql(
    store: Store,
    symbol: str,
    interval: str,
    start: datetime | None,
    end: datetime | None,
    names: tuple[str, ...],
) -> tuple[str, dict[str, Any]]:
    _check_interval(interval)
    params: dict[str, Any] = {
        "symbol": symbol,
        **range_params(start, end),
        "seconds": INTERVAL_SECONDS[interval],
    }
    if interval == "10s":
        return _candles_10s_sql(store, names), params
    return f"SELECT {', '.join(names)} FROM ({_rollup_sql(store)}) ", params  # noqa: S608


def _candles_10s_sql(store: Store, names: tuple[str, ...] = (*CANDLE_COLUMNS, "window_end")) -> str:
    columns = ", ".join(names)
    return (
        f"SELECT {columns} FROM {store.table(CANDLES_10S)} FINAL "  # noqa: S608 - identifiers only
        f"WHERE symbol = {{symbol:String}} AND window_start >= {{start:{TS}}} "
        f"AND window_start < {{end:{TS}}} "
    )


def _rollup_sql(store: Store) -> str:
    """Merge 10 s candles into ``{seconds}``-long buckets aligned to the epoch (UTC days): every
    bucket with ``start <= bucket < end`` (start rounded down), complete."""
    every = "toIntervalSecond({seconds:UInt32})"
    return f"""
        SELECT symbol, bucket AS window_start, open, high, low, close, volume, quote_volume,
               toFloat64(quote_volume) / toFloat64(volume) AS vwap, trades, buy_volume,
               first_trade_id, last_trade_id, bucket + {every} AS window_end
        FROM (
            SELECT c.symbol AS symbol,
                   CAST(toStartOfInterval(c.window_start, {every}) AS {TS}) AS bucket,
                   argMin(c.open, c.window_start) AS open, max(c.high) AS high,
                   min(c.low) AS low, argMax(c.close, c.window_start) AS close,
                   CAST(sum(c.volume) AS Decimal(38, 8)) AS volume,
                   CAST(sum(c.quote_volume) AS Decimal(38, 16)) AS quote_volume,
                   sum(c.trades) AS trades,
                   CAST(sum(c.buy_volume) AS Decimal(38, 8)) AS buy_volume,
                   argMin(c.first_trade_id, c.window_start) AS first_trade_id,
                   argMax(c.last_trade_id, c.window_start) AS last_trade_id
            FROM {store.table(CANDLES_10S)} AS c FINAL
            WHERE c.symbol = {{symbol:String}}
              AND c.window_start >= toStartOfInterval({{start:{TS}}}, {every})
              AND c.window_start < {{end:{TS}}} + {every}
            GROUP BY symbol, bucket
            HAVING bucket < {{end:{TS}}}
        )
    """  # noqa: S608 - identifiers only; every value is a bound parameter


def symbols(store: Store) -> list[str]:
    """Symbols that have candles, alphabetically."""
    rows = store.query_rows(
        f"SELECT DISTINCT symbol FROM {store.table(CANDLES_10S)} ORDER BY symbol"  # noqa: S608
    )
    return [str(r[0]) for r in rows]


def trade_counts(store: Store) -> dict[str, int]:
    """Distinct stored trades per symbol."""
    rows = store.query_rows(
        f"SELECT symbol, count() FROM {store.table(TRADES)} FINAL GROUP BY symbol"  # noqa: S608
    )
    return {str(s): int(n) for s, n in rows}


def candle_trade_counts(store: Store) -> dict[str, int]:
    """Sum of candle trade counts per symbol (equals trade_counts once candles are final)."""
    rows = store.query_rows(
        f"SELECT symbol, sum(trades) FROM {store.table(CANDLES_10S)} FINAL GROUP BY symbol"  # noqa: S608
    )
    return {str(s): int(n) for s, n in rows}


def stored_since(store: Store, since: datetime) -> tuple[int, int]:
    """(distinct trades, 10 s candles) the store received at or after ``since``: one run's
    share, for its closing summary."""
    rows = store.query_rows(
        f"SELECT (SELECT count() FROM {store.table(TRADES)} FINAL "  # noqa: S608
        f"WHERE stored_at >= {{since:{TS}}}), (SELECT count() FROM {store.table(CANDLES_10S)} "
        f"FINAL WHERE updated_at >= {{since:{TS}}})",
        {"since": since},
    )
    return int(rows[0][0]), int(rows[0][1])


def history_last_ids(store: Store, symbols: Sequence[str]) -> dict[str, int]:
    """Per symbol, the last trade id of the published history loaded into the store
    (``cryptolab history load``), where the live feed continues from."""
    rows = store.query_rows(
        f"SELECT symbol, max(last_trade_id) FROM {store.table(HISTORY_FILES)} "  # noqa: S608
        "WHERE symbol IN {symbols:Array(String)} AND trades > 0 GROUP BY symbol",
        {"symbols": list(symbols)},
    )
    return {str(s): int(i) for s, i in rows}


def newest_trade_time(store: Store) -> datetime | None:
    """Trade time of the newest stored trade, or None when the store is empty."""
    rows = store.query_rows(
        f"SELECT max(trade_time), count() FROM {store.table(TRADES)}"  # noqa: S608
    )
    if not rows or not rows[0][1]:
        return None
    return to_utc(rows[0][0])


# -- dashboard read functions -------------------------------------------------------------------
def candle_bounds(store: Store, symbol: str) -> tuple[datetime, datetime] | None:
    """``(first, newest)`` window_start of ``symbol``'s 10 s candles, or None without candles."""
    rows = store.query_rows(
        f"SELECT min(window_start), max(window_start), count() "  # noqa: S608 - identifiers only
        f"FROM {store.table(CANDLES_10S)} WHERE symbol = {{symbol:String}}",
        {"symbol": symbol},
    )
    if not rows or not rows[0][2]:
        return None
    return utc_or(rows[0][0], EPOCH), utc_or(rows[0][1], EPOCH)


@dataclass(frozen=True)
class Ticker:
    """The headline numbers of one symbol, measured from its newest 10 s candle.

    ``change_pct`` compares the last price with the close 24 h before the newest candle, or with
    the first open when the store holds less than 24 h (``change_since`` says which time).
    ``trades_per_s`` averages the last complete minute.
    """

    symbol: str
    last: float
    newest: datetime
    change_pct: float | None
    change_since: datetime
    trades_per_s: float


def ticker(store: Store, symbol: str) -> Ticker | None:
    """Last price, 24 h change and trades/s of ``symbol``, or None when it has no candles."""
    sql = (
        f"WITH (SELECT max(window_start) FROM {store.table(CANDLES_10S)} "  # noqa: S608
        f"WHERE symbol = {{symbol:String}}) AS newest "
        "SELECT argMax(close, window_start), newest, "
        "argMaxIf(close, window_start, window_start <= newest - INTERVAL 1 DAY), "
        "maxIf(window_start, window_start <= newest - INTERVAL 1 DAY), "
        "countIf(window_start <= newest - INTERVAL 1 DAY), "
        "argMin(open, window_start), min(window_start), "
        "sumIf(trades, window_start >= newest - INTERVAL 60 SECOND AND window_start < newest), "
        "count() "
        f"FROM {store.table(CANDLES_10S)} FINAL "
        "WHERE symbol = {symbol:String} AND window_start >= newest - INTERVAL 25 HOUR"
    )
    rows = store.query_rows(sql, {"symbol": symbol})
    if not rows or not rows[0][-1]:
        return None
    last, newest, ref_close, ref_time, has_ref, first_open, first_time, minute_trades, _ = rows[0]
    reference, since = (ref_close, ref_time) if has_ref else (first_open, first_time)
    change = (float(last) / float(reference) - 1.0) * 100.0 if reference else None
    return Ticker(
        symbol=symbol,
        last=float(last),
        newest=utc_or(newest, EPOCH),
        change_pct=change,
        change_since=utc_or(since, EPOCH),
        trades_per_s=float(minute_trades) / 60.0,
    )
