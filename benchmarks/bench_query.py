"""Measure 7: candle queries over 30 days x 3 symbols of stored 10 s candles, against
aggregating raw trades on the fly (the original design stored no candles)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.common import Baseline, Clause, Result, median, percentile, spread
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


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def candle_queries(repeats: int = 3, per_round: int = 15) -> Result:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        store = open_store(load_settings(data_dir=Path(tmp)))
        candles = load_candles(store, rng)
        trades = load_raw_day(store, rng)
        store.command(f"OPTIMIZE TABLE {store.table(CANDLES_10S)} FINAL")
        store.command(f"OPTIMIZE TABLE {store.table(TRADES)} FINAL")
        noon = START + timedelta(days=DAYS - 1, hours=12)
        day = START + timedelta(days=DAYS - 1)
        counts: set[tuple[str, int]] = set()

        def hour() -> None:
            rows = queries.candles(store, "BTCUSDT", "10s", noon, noon + timedelta(hours=1))
            counts.add(("ours", len(rows)))

        def base_hour() -> None:
            counts.add(("baseline", raw_aggregation(store, noon, noon + timedelta(hours=1))))

        ours_ms: list[list[float]] = []
        base_ms: list[list[float]] = []
        for _ in range(repeats):  # ours and the baseline alternate query by query
            pairs = [(_timed(hour), _timed(base_hour)) for _ in range(per_round)]
            ours_ms.append([a for a, _ in pairs])
            base_ms.append([b for _, b in pairs])
        full = [
            _timed(lambda: queries.candles(store, "BTCUSDT", "10s", day, day + timedelta(days=1)))
            for _ in range(10)
        ]
        roll = [
            _timed(lambda: queries.candles(store, "BTCUSDT", "1m", day, day + timedelta(days=1)))
            for _ in range(10)
        ]
        base_day = [
            _timed(lambda: raw_aggregation(store, day, day + timedelta(days=1))) for _ in range(3)
        ]
        store.close()
    wrong = sorted(c for c in counts if c[1] != 360)
    result = Result(
        7,
        "candle query, 1 h of 10 s candles (30 days x 3 symbols stored)",
        "ms p50",
        [round(median(r), 2) for r in ours_ms],
        "p50 <= 25 ms for 1 h",
        [],
        [
            Baseline(
                "aggregate raw trades at query time",
                [round(median(r), 2) for r in base_ms],
                f"10 s OHLC from {trades:,} raw trades (1 day of BTCUSDT at 46/s; a smaller "
                "table than 30 days would be, so it flatters the baseline)",
            )
        ],
        notes=f"{candles:,} candles; {repeats} rounds of {per_round} queries, ours and the "
        "baseline alternating; each answer must hold the hour's 360 candles",
        extra={
            "hour_p99_ms": round(percentile([m for r in ours_ms for m in r], 99), 2),
            "day_p50_ms": round(median(full), 2),
            "day_1m_rollup_p50_ms": round(median(roll), 2),
            "baseline_day_p50_ms": round(median(base_day), 2),
        },
        error=f"answers with other than 360 candles: {wrong}" if wrong else None,
    )
    ours = spread(result.ours)["median"]
    result.clauses = [Clause("p50 <= 25 ms for 1 h", ours, ours <= 25)]
    return result
