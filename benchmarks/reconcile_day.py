"""How long does `reconcile` take for one day of trades at 50 trades/s (4.32 M trades)?

    .venv/bin/python -m benchmarks.reconcile_day [--rate 50] [--symbols 1] [--out FILE.md]

Writes ``build/results/bench/standalone/reconcile.md`` unless ``--out`` says otherwise (the
published copy is ``--out reports/reconcile.md``).

Loads synthetic trades straight into a fresh embedded store (chDB), then times:
  1. reconcile from nothing (every 10 s window of the day written),
  2. reconcile again (nothing to change: the steady-state cost of a periodic run),
  3. reconcile of one hour (what the running stack does with the default look-back).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.common import STANDALONE, git_commit
from cryptolab.settings import load_settings
from cryptolab.store import open_store
from cryptolab.store.reconcile import reconcile
from cryptolab.store.schema import TRADES

DAY_START = datetime(2026, 11, 1, tzinfo=UTC)
TS = pa.timestamp("ms", tz="UTC")


def _decimal(units: np.ndarray, scale: int) -> pa.Array:
    """Integers counted in 10**-scale -> exact Decimal(18, 8) (via their decimal text)."""
    step = 10**scale
    text = [f"{int(u) // step}.{int(u) % step:0{scale}d}" for u in units]
    return pa.array(text).cast(pa.decimal128(18, 8))


def day_of_trades(symbol: str, rate: float, rng: np.random.Generator, chunk: int) -> list[pa.Table]:
    count = int(rate * 86_400)
    times = np.sort(rng.integers(0, 86_400_000, count)) + int(DAY_START.timestamp() * 1000)
    ticks = 9_700_000 + np.cumsum(rng.integers(-2, 3, count))  # price in cents
    qty = rng.integers(1, 500, count) * 1000  # in 1e-8 units
    maker = rng.random(count) < 0.5
    tables = []
    for lo in range(0, count, chunk):
        hi = min(lo + chunk, count)
        n = hi - lo
        tables.append(
            pa.table(
                {
                    "symbol": pa.array([symbol] * n),
                    "trade_id": pa.array(np.arange(lo, hi, dtype=np.int64)),
                    "price": _decimal(ticks[lo:hi], 2),
                    "qty": _decimal(qty[lo:hi], 8),
                    "trade_time": pa.array(times[lo:hi], TS),
                    "event_time": pa.array(times[lo:hi], TS),
                    "is_buyer_maker": pa.array(maker[lo:hi]),
                    "ingest_time": pa.array(times[lo:hi], TS),
                }
            )
        )
    return tables


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50.0, help="trades/s per symbol")
    parser.add_argument("--symbols", type=int, default=1)
    parser.add_argument("--out", type=Path, default=STANDALONE / "reconcile.md")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        store = open_store(load_settings(data_dir=Path(tmp)))
        loaded = 0
        started = time.perf_counter()
        for i in range(args.symbols):
            for table in day_of_trades(f"SYM{i}USDT", args.rate, rng, 500_000):
                store.insert_arrow(TRADES, table)
                loaded += table.num_rows
        load_s = time.perf_counter() - started
        store.command(f"OPTIMIZE TABLE {store.table(TRADES)} FINAL")
        full = reconcile(store, DAY_START, DAY_START + timedelta(days=1))
        again = reconcile(store, DAY_START, DAY_START + timedelta(days=1))
        hour = reconcile(store, DAY_START + timedelta(hours=12), DAY_START + timedelta(hours=13))
    lines = [
        "# Reconcile: one day of trades",
        "",
        f"Command: `.venv/bin/python -m benchmarks.reconcile_day --rate {args.rate:g} "
        f"--symbols {args.symbols}`  ",
        f"Machine: {platform.machine()}, {platform.python_version()}, embedded chDB; "
        f"run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit {git_commit()}.",
        "",
        f"{loaded:,} trades ({args.symbols} symbol(s) x {args.rate:g}/s x 24 h) loaded in "
        f"{load_s:.1f} s ({loaded / load_s:,.0f} rows/s, 500k-row Arrow inserts).",
        "",
        "| reconcile run | windows checked | windows written | seconds |",
        "|---|---:|---:|---:|",
        f"| whole day, from empty candles | {full.windows_checked:,} | {len(full.changed):,} "
        f"| {full.seconds:.2f} |",
        f"| whole day again (nothing to fix) | {again.windows_checked:,} | {len(again.changed):,} "
        f"| {again.seconds:.2f} |",
        f"| one hour (the running stack's default look-back) | {hour.windows_checked:,} "
        f"| {len(hour.changed):,} | {hour.seconds:.2f} |",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
