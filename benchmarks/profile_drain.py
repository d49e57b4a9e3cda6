"""Where row 5's per-trade cost goes: each stage of the streaming job drained alone, and the
whole job before and after issue 17's cut, side by side.

One topic holds a backlog of synthetic trades; each stage variant is a streaming query over it
(fresh checkpoint, ``availableNow``, ``noop`` sink) so a variant's time is Spark reading,
parsing, aggregating -- no Arrow transfer or store insert. The ``job_*`` variants drain the same
topic through a whole job into a fresh chDB database: ``job_before`` the two queries of before
(benchmarks/old_job.py), ``job_after`` the single query (cryptolab.streaming.job), with wall time
and the CPU seconds of this process and its Spark JVM. Variants run round-robin, several
rounds, in one SparkSession, so they share the machine's load.

    python -m benchmarks.profile_drain --bootstrap HOST:PORT --trades 200000 --rounds 3
    python -m benchmarks.profile_drain --bootstrap HOST:PORT --only job_before,job_after
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

import psutil

from benchmarks import old_job
from benchmarks.old_job import TwoQueryJob
from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.settings import Settings, load_settings
from cryptolab.store import open_store
from cryptolab.streaming import job
from cryptolab.streaming.job import StreamingJob
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


def tree_cpu() -> float:
    """CPU seconds of this process and its children (the Spark JVM) so far."""
    me = psutil.Process()
    total = 0.0
    for process in (me, *me.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def drain_job(
    spark: Any, settings: Settings, bootstrap: str, job_class: type[StreamingJob]
) -> tuple[float, float]:
    """Wall and CPU seconds for a whole job to write the topic's backlog to a fresh database."""
    fresh = settings.model_copy(update={"clickhouse_database": f"p_{uuid.uuid4().hex[:8]}"})
    store = open_store(fresh)
    target = end_offsets(bootstrap, settings.topic)
    cpu, started = tree_cpu(), time.perf_counter()
    job = job_class(spark, fresh, bootstrap, store).start()
    try:
        while not job.caught_up(target):
            time.sleep(0.05)
        return time.perf_counter() - started, tree_cpu() - cpu
    finally:
        job.stop()


JOBS: dict[str, type[StreamingJob]] = {"job_before": TwoQueryJob, "job_after": StreamingJob}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--trades", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join([*VARIANTS, *JOBS]))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        settings = load_settings(data_dir=Path(tmp), topic=f"prof_{uuid.uuid4().hex[:8]}")
        count = publish(settings, args.bootstrap, args.trades)
        spark = create_spark(settings)
        names = args.only.split(",")
        times: dict[str, list[float]] = {name: [] for name in names}
        cpus: dict[str, list[float]] = {name: [] for name in names}
        load = [os.getloadavg()[0]]
        drain(spark, settings, args.bootstrap, VARIANTS["read"], tmp)  # JIT warm-up
        for _ in range(args.rounds):
            for name in names:
                if name in JOBS:
                    wall, cpu = drain_job(spark, settings, args.bootstrap, JOBS[name])
                    times[name].append(wall)
                    cpus[name].append(cpu)
                else:
                    times[name].append(drain(spark, settings, args.bootstrap, VARIANTS[name], tmp))
        load.append(os.getloadavg()[0])
        print(f"{count:,} trades, {args.rounds} rounds, load {load[0]:.1f} -> {load[1]:.1f}")
        for name in names:
            runs = ", ".join(f"{t:.2f}" for t in times[name])
            best = min(times[name])
            used = f"  CPU median {statistics.median(cpus[name]):.1f} s" if cpus[name] else ""
            print(
                f"{name:>12}: median {statistics.median(times[name]):.2f} s  best {best:.2f} s"
                f"  ({count / best:,.0f} trades/s){used}  runs {runs}"
            )


if __name__ == "__main__":
    main()
