"""Measure 7: candle queries over 30 days x 3 symbols of stored 10 s candles, against
aggregating raw trades on the fly (the original design stored no candles)."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.common import Result, median, percentile
from cryptolab.settings import load_settings
from cryptolab.store import Store, open_store, queries
from cryptolab.store.schema import CANDLES_10S, TRADES

TS = pa.timestamp("ms", tz="UTC")
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 30
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def _dec(values: np.ndarray, scale: int) -> pa.Array:
    """Integers in units of 10**-scale -> Decimal(38, scale) without going through floats."""
    return (
        pa.array(values.astype(np.int64))
        .cast(pa.decimal128(38, 0))
        .cast(pa.decimal128(38, scale))
        .cast(pa.decimal128(38, scale))
    )


def load_candles(store: Store, rng: np.random.Generator) -> int:
    n = DAYS * 8640
    starts = int(START.timestamp() * 1000) + np.arange(n, dtype=np.int64) * 10_000
    total = 0
    for symbol in SYMBOLS:
        close = 9_700_000 + np.cumsum(rng.integers(-20, 21, n))
        price = pa.array([f"{c // 100}.{c % 100:02d}" for c in close]).cast(pa.decimal128(18, 8))
        table = pa.table(
            {
                "symbol": [symbol] * n,
                "window_start": pa.array(starts, TS),
                "window_end": pa.array(starts + 10_000, TS),
                "open": price,
                "high": price,
                "low": price,
                "close": price,
                "volume": pa.array(["1.5"] * n).cast(pa.decimal128(38, 8)),
                "quote_volume": pa.array(["145500.0"] * n).cast(pa.decimal128(38, 16)),
                "vwap": pa.array(close / 100.0),
                "trades": pa.array(rng.integers(1, 900, n)),
                "buy_volume": pa.array(["0.7"] * n).cast(pa.decimal128(38, 8)),
                "first_trade_id": pa.array(np.arange(n) * 1000),
                "last_trade_id": pa.array(np.arange(n) * 1000 + 999),
                "updated_at": pa.array(starts, TS),
            }
        )
        for lo in range(0, n, 200_000):
            store.insert_arrow(CANDLES_10S, table.slice(lo, 200_000))
        total += n
    return total


def load_raw_day(store: Store, rng: np.random.Generator, rate: float = 46.0) -> int:
    """One day of BTCUSDT raw trades at a Binance-like rate (the baseline's input)."""
    count = int(rate * 86_400)
    day = int((START + timedelta(days=DAYS - 1)).timestamp() * 1000)
    times = np.sort(rng.integers(0, 86_400_000, count)) + day
    cents = 9_700_000 + np.cumsum(rng.integers(-2, 3, count))
    for lo in range(0, count, 500_000):
        hi = min(lo + 500_000, count)
        price = pa.array([f"{c // 100}.{c % 100:02d}" for c in cents[lo:hi]])
        store.insert_arrow(
            TRADES,
            pa.table(
                {
                    "symbol": ["BTCUSDT"] * (hi - lo),
                    "trade_id": pa.array(np.arange(lo, hi)),
                    "price": price.cast(pa.decimal128(18, 8)),
                    "qty": pa.array(["0.00100000"] * (hi - lo)).cast(pa.decimal128(18, 8)),
                    "trade_time": pa.array(times[lo:hi], TS),
                    "event_time": pa.array(times[lo:hi], TS),
                    "is_buyer_maker": pa.array(rng.random(hi - lo) < 0.5),
                    "ingest_time": pa.array(times[lo:hi], TS),
                }
            ),
        )
    return count


def raw_aggregation(store: Store, start: datetime, end: datetime) -> int:
    """The baseline: aggregate raw trades into 10 s OHLC at query time."""
    rows = store.query_rows(
        f"SELECT toStartOfInterval(trade_time, INTERVAL 10 SECOND) AS w, "  # noqa: S608
        "argMin(price, (trade_time, trade_id)), max(price), min(price), "
        "argMax(price, (trade_time, trade_id)), sum(qty), count() "
        f"FROM {store.table(TRADES)} FINAL WHERE symbol = {{s:String}} "
        "AND trade_time >= {a:DateTime64(3, 'UTC')} AND trade_time < {b:DateTime64(3, 'UTC')} "
        "GROUP BY w ORDER BY w",
        {"s": "BTCUSDT", "a": start, "b": end},
    )
    return len(rows)


def _timed(fn: object, runs: int = 30) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - started) * 1000)
    return out


def candle_queries() -> Result:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        store = open_store(load_settings(data_dir=Path(tmp)))
        candles = load_candles(store, rng)
        trades = load_raw_day(store, rng)
        store.command(f"OPTIMIZE TABLE {store.table(CANDLES_10S)} FINAL")
        store.command(f"OPTIMIZE TABLE {store.table(TRADES)} FINAL")
        noon = START + timedelta(days=DAYS - 1, hours=12)
        day = START + timedelta(days=DAYS - 1)
        hour = _timed(
            lambda: queries.candles(store, "BTCUSDT", "10s", noon, noon + timedelta(hours=1))
        )
        full = _timed(
            lambda: queries.candles(store, "BTCUSDT", "10s", day, day + timedelta(days=1))
        )
        roll = _timed(lambda: queries.candles(store, "BTCUSDT", "1m", day, day + timedelta(days=1)))
        base_hour = _timed(lambda: raw_aggregation(store, noon, noon + timedelta(hours=1)))
        base_day = _timed(lambda: raw_aggregation(store, day, day + timedelta(days=1)), 10)
    return Result(
        7,
        "candle query, 1 h of 10 s candles (30 days x 3 symbols stored)",
        "ms p50",
        round(median(hour), 2),
        round(median(base_hour), 2),
        "p50 <= 25 ms for 1 h",
        median(hour) <= 25,
        notes=f"{candles:,} candles; baseline aggregates {trades:,} raw trades (1 day of "
        "BTCUSDT at 46/s; a smaller table than 30 days would be, so it flatters the baseline)",
        extra={
            "hour_p99_ms": round(percentile(hour, 99), 2),
            "day_p50_ms": round(median(full), 2),
            "day_1m_rollup_p50_ms": round(median(roll), 2),
            "baseline_day_p50_ms": round(median(base_day), 2),
        },
    )
