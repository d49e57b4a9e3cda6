"""Where row 5's per-trade cost goes: each stage of the streaming job drained alone.

One topic holds a backlog of synthetic trades; each variant is a streaming query over it
(fresh checkpoint, ``availableNow``, ``noop`` sink) so a variant's time is Spark reading,
parsing, aggregating -- no Arrow transfer or store insert. Variants run round-robin, several
rounds, in one SparkSession, so they share the machine's load.

    python -m benchmarks.profile_drain --bootstrap HOST:PORT --trades 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import old_job
from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.settings import Settings, load_settings
from cryptolab.streaming import job
from cryptolab.streaming.session import create_spark

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
RATE = 4600.0

Variant = Callable[[Any], tuple[Any, str]]

VARIANTS: dict[str, Variant] = {
    "read": lambda records: (records.selectExpr("CAST(value AS STRING) AS raw"), "append"),
    "parse": lambda records: (job.parse_values(records), "append"),
    "valid": lambda records: (old_job.valid_trades(job.parse_values(records)), "append"),
    "candles": lambda records: (
        old_job.candles(old_job.valid_trades(job.parse_values(records)), 5.0),
        "update",
    ),
}


def publish(settings: Settings, bootstrap: str, trades: int) -> int:
    ensure_topics(settings, bootstrap)
    producer = TradeProducer(settings, bootstrap)
    producer.publish_all(synth_frames(SYMBOLS, trades / (RATE * len(SYMBOLS)), RATE, seed=9))
    producer.flush()
    producer.close()
    return sum(end_offsets(bootstrap, settings.topic).values())


def drain(spark: Any, settings: Settings, bootstrap: str, variant: Variant, tmp: str) -> float:
    records = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", settings.topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    frame, mode = variant(records)
    started = time.perf_counter()
    query = (
        frame.writeStream.format("noop")
        .outputMode(mode)
        .option("checkpointLocation", os.path.join(tmp, uuid.uuid4().hex))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--trades", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(VARIANTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        settings = load_settings(data_dir=Path(tmp), topic=f"prof_{uuid.uuid4().hex[:8]}")
        count = publish(settings, args.bootstrap, args.trades)
        spark = create_spark(settings)
        names = args.only.split(",")
        times: dict[str, list[float]] = {name: [] for name in names}
        drain(spark, settings, args.bootstrap, VARIANTS["read"], tmp)  # JIT warm-up
        for _ in range(args.rounds):
            for name in names:
                times[name].append(drain(spark, settings, args.bootstrap, VARIANTS[name], tmp))
        print(f"{count:,} trades, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}")
        for name in names:
            runs = ", ".join(f"{t:.2f}" for t in times[name])
            best = min(times[name])
            print(
                f"{name:>12}: median {statistics.median(times[name]):.2f} s  best {best:.2f} s"
                f"  ({count / best:,.0f} trades/s)  runs {runs}"
            )


if __name__ == "__main__":
    main()
