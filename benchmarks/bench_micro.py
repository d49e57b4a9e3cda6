"""Measures 2 (parse + normalize per frame) and 3 (store write rate)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from benchmarks.common import Result, best_of_interleaved
from cryptolab.bus.producer import BATCH_FRAMES
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.model import parse_frame, parse_frames
from cryptolab.settings import load_settings
from cryptolab.store import open_store
from cryptolab.store.schema import TRADES

TS = pa.timestamp("ms", tz="UTC")


def baseline_parse(frame: str) -> tuple[object, ...]:
    """The original producer: json.loads, then float() per numeric field."""
    data = json.loads(frame)["data"]
    return (
        data["s"],
        int(data["t"]),
        float(data["p"]),
        float(data["q"]),
        int(data["T"]),
        int(data["E"]),
        bool(data["m"]),
    )


def parse_cost() -> Result:
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 120, 50, seed=1))
    n = len(frames)

    def ours() -> None:  # what the producer does with frames it has at hand (a tape)
        for start in range(0, n, BATCH_FRAMES):
            parse_frames(frames[start : start + BATCH_FRAMES], 0)

    def one_by_one() -> None:  # a live feed: each frame as it arrives
        for frame in frames:
            parse_frame(frame, 0)

    def base() -> None:
        for frame in frames:
            baseline_parse(frame)

    ours_s, single_s, base_s = best_of_interleaved([ours, one_by_one, base], 9)
    ours_us, single_us, base_us = (t / n * 1e6 for t in (ours_s, single_s, base_s))
    return Result(
        2,
        "parse + normalize per frame",
        "µs",
        round(ours_us, 3),
        round(base_us, 3),
        ">= 5x faster",
        base_us / ours_us >= 5,
        notes=f"{n} synthetic frames in batches of {BATCH_FRAMES} (parse_frames, as the "
        "producer publishes a tape); ours validates every field exactly (DLQ reasons)",
        extra={
            "one_by_one_us": round(single_us, 3),
            "one_by_one_ratio": round(base_us / single_us, 2),
        },
    )


def _trades(n: int) -> pa.Table:
    from decimal import Decimal

    return pa.table(
        {
            "symbol": ["BTCUSDT"] * n,
            "trade_id": pa.array(range(n), pa.int64()),
            "price": pa.array([Decimal("97000.01")] * n, pa.decimal128(18, 8)),
            "qty": pa.array([Decimal("0.001")] * n, pa.decimal128(18, 8)),
            "trade_time": pa.array(range(n), TS),
            "event_time": pa.array(range(n), TS),
            "is_buyer_maker": [True] * n,
            "ingest_time": pa.array(range(n), TS),
        }
    )


def store_write_rate() -> Result:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        store = open_store(load_settings(data_dir=Path(tmp)))
        rows = _trades(100_000)
        started = time.perf_counter()
        store.insert_arrow(TRADES, rows)
        ours = rows.num_rows / (time.perf_counter() - started)
        one = _trades(300)
        started = time.perf_counter()
        for i in range(one.num_rows):  # the original design: one INSERT per row
            store.insert_arrow(TRADES, one.slice(i, 1))
        base = one.num_rows / (time.perf_counter() - started)
        store.close()
    return Result(
        3,
        "store write rate",
        "rows/s",
        round(ours),
        round(base),
        ">= 500x baseline; <= 1 INSERT/s/table",
        ours / base >= 500,
        notes="ours: one Arrow INSERT per micro-batch (100k rows here); the stream "
        "inserts once per trigger per table (1 s default)",
    )


def dashboard_update() -> Result:
    """Measure 6: runs benchmarks.dashboard_latency (30 days x 3 symbols) and reads its JSON;
    the row is the 1 h range (the default view of a 10 s chart), all ranges in the extra."""
    import json
    import subprocess
    import sys

    out = Path(tempfile.mkdtemp()) / "dashboard_latency.md"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.dashboard_latency",
            "--days",
            "30",
            "--ticks",
            "100",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    rows = {r["range"]: r for r in json.loads(out.with_suffix(".json").read_text())["results"]}
    hour = rows["1h"]
    speedup = hour["full_p50_ms"] / hour["patch_p50_ms"]
    smaller = hour["full_bytes_p50"] / hour["patch_bytes_p50"]
    return Result(
        6,
        "dashboard live update callback, 1 h of 10 s candles",
        "ms p50",
        round(hour["patch_p50_ms"], 2),
        round(hour["full_p50_ms"], 2),
        ">= 5x faster, >= 50x fewer bytes, p99 <= 50 ms",
        speedup >= 5 and smaller >= 50 and hour["patch_p99_ms"] <= 50,
        notes=f"Dash Patch vs full-figure redraw through the callback endpoint, 100 ticks per "
        f"range; bytes {hour['patch_bytes_p50']:,.0f} vs {hour['full_bytes_p50']:,.0f} "
        f"({smaller:.0f}x fewer)",
        extra={
            f"{k}_patch_vs_full_p50_ms": f"{v['patch_p50_ms']:.1f} vs {v['full_p50_ms']:.1f}"
            for k, v in rows.items()
        }
        | {"patch_p99_ms": round(hour["patch_p99_ms"], 1)},
    )
