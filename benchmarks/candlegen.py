"""Synthetic 10 s candles written straight into a store (no Kafka, no Spark): for benchmarks
and screenshots that need weeks of history in seconds. Deterministic for a given seed."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cryptolab.store import Store
from cryptolab.store.schema import CANDLES_10S

STEP_MS = 10_000
START_PRICES = {"BTCUSDT": 97_000.0, "ETHUSDT": 3_600.0, "BNBUSDT": 650.0, "SOLUSDT": 240.0}
BATCH = 100_000


def _decimals(values: np.ndarray, places: int, precision: int, scale: int = 8) -> pa.Array:
    return pc.cast(pa.array(np.round(values, places)), pa.decimal128(precision, scale))


def candle_table(symbol: str, start_ms: int, count: int, rng: np.random.Generator) -> pa.Table:
    """``count`` consecutive 10 s candles of ``symbol`` from ``start_ms``: a random walk that
    ends at the symbol's usual price (where the bundled sample tape starts)."""
    price0 = START_PRICES.get(symbol, 100.0)
    walk = np.cumsum(rng.normal(0, 0.0006, count))
    close = price0 * np.exp(walk - walk[-1])
    open_ = np.concatenate([[close[0] * np.exp(rng.normal(0, 0.0006))], close[:-1]])
    spread = np.abs(rng.normal(0, 0.0004, count)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - np.abs(rng.normal(0, 0.0004, count)) * close
    volume = rng.lognormal(0, 0.8, count) * 50_000 / price0
    buy = volume * rng.beta(5, 5, count)
    vwap = low + (high - low) * rng.uniform(0.3, 0.7, count)
    trades = rng.poisson(400, count).astype(np.int64) + 1
    last_id = 1_000_000 + np.cumsum(trades)
    starts = start_ms + np.arange(count, dtype=np.int64) * STEP_MS
    ts = pa.timestamp("ms", tz="UTC")
    return pa.table(
        {
            "symbol": [symbol] * count,
            "window_start": pa.array(starts, ts),
            "window_end": pa.array(starts + STEP_MS, ts),
            "open": _decimals(open_, 2, 18),
            "high": _decimals(high, 2, 18),
            "low": _decimals(low, 2, 18),
            "close": _decimals(close, 2, 18),
            "volume": _decimals(volume, 8, 38),
            "quote_volume": _decimals(volume * vwap, 8, 38, 16),
            "vwap": pa.array(vwap),
            "trades": pa.array(trades),
            "buy_volume": _decimals(buy, 8, 38),
            "first_trade_id": pa.array(last_id - trades + 1),
            "last_trade_id": pa.array(last_id),
            "updated_at": pa.array(starts + STEP_MS, ts),
        }
    )


def fill(
    store: Store, symbols: list[str], days: float, end: datetime | None = None, seed: int = 7
) -> int:
    """Write ``days`` of 10 s candles per symbol ending at ``end`` (default: now). Returns rows."""
    end_ms = int((end or datetime.now(UTC)).timestamp() * 1000) // STEP_MS * STEP_MS
    count = int(days * 86_400_000 // STEP_MS)
    start_ms = end_ms - count * STEP_MS
    rng = np.random.default_rng(seed)
    rows = 0
    for symbol in symbols:
        table = candle_table(symbol, start_ms, count, rng)
        for offset in range(0, table.num_rows, BATCH):
            store.insert_arrow(CANDLES_10S, table.slice(offset, BATCH))
        rows += table.num_rows
    return rows


def main() -> None:
    """``python -m benchmarks.candlegen --data-dir DIR --days N``: history ending now."""
    import argparse

    from cryptolab.settings import load_settings
    from cryptolab.store import open_store

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT,BNBUSDT")
    parser.add_argument("--end", help="ISO time of the last candle (default: now)")
    args = parser.parse_args()
    end = datetime.fromisoformat(args.end) if args.end else None
    store = open_store(load_settings(data_dir=args.data_dir))
    print(f"wrote {fill(store, args.symbols.split(','), args.days, end):,} candles")
    store.close()


if __name__ == "__main__":
    main()
