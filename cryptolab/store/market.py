"""Market read functions over raw trades: the trades themselves, period statistics, activity,
volume by price and trade sizes. Every value is a bound query parameter; times are UTC and a
range is ``start <= trade_time < end`` (None = unbounded)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from cryptolab.store.client import Store
from cryptolab.store.schema import OHLCV_FROM_TRADES, TRADE_ORDER, TRADES, TS
from cryptolab.times import range_params

_ORDER = TRADE_ORDER
_RANGE = (
    f"symbol = {{symbol:String}} AND trade_time >= {{start:{TS}}} AND trade_time < {{end:{TS}}}"
)


def _params(
    symbol: str, start: datetime | None, end: datetime | None, **extra: Any
) -> dict[str, Any]:
    return {"symbol": symbol, **range_params(start, end), **extra}


def _frame(store: Store, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    return store.query_arrow(sql, params).to_pandas()


def trades(
    store: Store,
    symbol: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Distinct trades of ``symbol`` in time order (by trade time, then id); ``limit`` keeps the
    first N. Columns: symbol, trade_id, price, qty (Decimal), trade_time, event_time,
    is_buyer_maker."""
    sql = (
        "SELECT symbol, trade_id, price, qty, trade_time, event_time, is_buyer_maker "  # noqa: S608
        f"FROM {store.table(TRADES)} FINAL WHERE {_RANGE} ORDER BY {_ORDER}"
    )
    params = _params(symbol, start, end)
    if limit is not None:
        sql += " LIMIT {limit:UInt64}"
        params["limit"] = int(limit)
    return _frame(store, sql, params)


def summary(
    store: Store, symbol: str, start: datetime | None = None, end: datetime | None = None
) -> dict[str, Any]:
    """Exact statistics of the period from the raw trades: first/last trade time, open, high,
    low, close, volume, quote_volume, vwap, trades, buy_volume (taker buys). Empty dict when
    the period has no trades."""
    sql = f"""
        SELECT min(trade_time) AS first_trade, max(trade_time) AS last_trade,
               {OHLCV_FROM_TRADES}
        FROM {store.table(TRADES)} FINAL WHERE {_RANGE}
    """  # noqa: S608 - identifiers only; values are bound parameters
    frame = _frame(store, sql, _params(symbol, start, end))
    if frame.empty or int(frame["trades"].iloc[0]) == 0:
        return {}
    return {str(k): v for k, v in frame.iloc[0].to_dict().items()}


def busiest(
    store: Store,
    symbol: str,
    start: datetime | None = None,
    end: datetime | None = None,
    seconds: int = 60,
    top: int = 5,
) -> pd.DataFrame:
    """The ``top`` busiest ``seconds``-long buckets by trade count (ties: earlier first).
    Columns: bucket_start, trades, volume, quote_volume, buy_volume."""
    sql = f"""
        SELECT CAST(toStartOfInterval(trade_time, toIntervalSecond({{seconds:UInt32}})) AS {TS})
                   AS bucket_start,
               count() AS trades,
               CAST(sum(qty) AS Decimal(38, 8)) AS volume,
               CAST(sum(toDecimal128(price, 8) * toDecimal128(qty, 8)) AS Decimal(38, 16))
                   AS quote_volume,
               CAST(sumIf(qty, NOT is_buyer_maker) AS Decimal(38, 8)) AS buy_volume
        FROM {store.table(TRADES)} FINAL WHERE {_RANGE}
        GROUP BY bucket_start ORDER BY trades DESC, bucket_start LIMIT {{top:UInt32}}
    """  # noqa: S608 - identifiers only; values are bound parameters
    return _frame(store, sql, _params(symbol, start, end, seconds=int(seconds), top=int(top)))


def volume_profile(
    store: Store,
    symbol: str,
    start: datetime | None = None,
    end: datetime | None = None,
    bins: int = 40,
) -> pd.DataFrame:
    """Traded volume by price: the period's price range cut into ``bins`` equal buckets.
    Columns: price_low, price_high, volume, buy_volume, sell_volume, trades (float prices and
    volumes; empty buckets omitted)."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    sql = f"""
        WITH bounds AS (
            SELECT toFloat64(min(price)) AS lo, toFloat64(max(price)) AS hi
            FROM {store.table(TRADES)} FINAL WHERE {_RANGE}
        )
        SELECT least(toUInt32(floor((toFloat64(price) - lo) / greatest(hi - lo, 1e-12)
                                    * {{bins:UInt32}})), {{bins:UInt32}} - 1) AS bucket,
               any(lo) + bucket * (any(hi) - any(lo)) / {{bins:UInt32}} AS price_low,
               any(lo) + (bucket + 1) * (any(hi) - any(lo)) / {{bins:UInt32}} AS price_high,
               sum(toFloat64(qty)) AS volume,
               sumIf(toFloat64(qty), NOT is_buyer_maker) AS buy_volume,
               volume - buy_volume AS sell_volume,
               count() AS trades
        FROM {store.table(TRADES)} FINAL CROSS JOIN bounds WHERE {_RANGE}
        GROUP BY bucket ORDER BY bucket
    """  # noqa: S608 - identifiers only; values are bound parameters
    frame = _frame(store, sql, _params(symbol, start, end, bins=int(bins)))
    return frame.drop(columns=["bucket"])


def size_distribution(
    store: Store,
    symbol: str,
    start: datetime | None = None,
    end: datetime | None = None,
    per_decade: int = 4,
) -> pd.DataFrame:
    """Trade sizes by notional (price x quantity, in the quote currency) on a log scale,
    ``per_decade`` buckets per power of ten. Columns: notional_low, notional_high, trades,
    volume, quote_volume (floats), ordered by size."""
    sql = f"""
        SELECT floor(log10(toFloat64(price) * toFloat64(qty)) * {{k:UInt32}}) AS bucket,
               pow(10, bucket / {{k:UInt32}}) AS notional_low,
               pow(10, (bucket + 1) / {{k:UInt32}}) AS notional_high,
               count() AS trades,
               sum(toFloat64(qty)) AS volume,
               sum(toFloat64(price) * toFloat64(qty)) AS quote_volume
        FROM {store.table(TRADES)} FINAL WHERE {_RANGE}
        GROUP BY bucket ORDER BY bucket
    """  # noqa: S608 - identifiers only; values are bound parameters
    frame = _frame(store, sql, _params(symbol, start, end, k=int(per_decade)))
    return frame.drop(columns=["bucket"])


def symbols_with_trades(store: Store) -> list[str]:
    """Symbols that have stored trades, alphabetically."""
    rows = store.query_rows(
        f"SELECT DISTINCT symbol FROM {store.table(TRADES)} ORDER BY symbol"  # noqa: S608
    )
    return [str(r[0]) for r in rows]
