"""Spark 4.3 real-time mode, windowed candles over Kafka, with the 4.2.0 connector jars.

    python rtm_spark.py rtm|micro SECONDS      # in a scratch venv with pyspark 4.3

Prints the latency from the newest trade of a candle to the candle being emitted (p50, p99).
See reports/profiles/realtime_mode.md; the feed is rtm_feed.py.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

SCHEMA = (
    "symbol STRING, trade_id BIGINT, price STRING, qty STRING, trade_time BIGINT, "
    "event_time BIGINT, is_buyer_maker BOOLEAN, ingest_time BIGINT"
)
JARS = "~/.cache/cryptolab/jars/spark-kafka-4.2.0/*.jar"


class Writer:
    """foreach sink: one JSON line per emitted candle update, with the wall clock."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def open(self, partition_id: int, epoch_id: int) -> bool:
        self.handle = self.out.open("a")
        return True

    def process(self, row: Any) -> None:
        line = {"now": time.time() * 1000, "newest": row["newest"], "trades": row["trades"]}
        self.handle.write(json.dumps(line) + "\n")

    def close(self, error: Any) -> None:
        self.handle.close()


def candles(spark: Any, bootstrap: str) -> Any:
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", "rtm_trades")
        .option("startingOffsets", "latest")
        .load()
    )
    trades = raw.select(F.from_json(F.col("value").cast("string"), SCHEMA).alias("t"))
    trades = trades.select("t.*").withColumn("ts", F.timestamp_millis("trade_time"))
    return (
        trades.withWatermark("ts", "5 seconds")
        .groupBy(F.window("ts", "10 seconds"), "symbol")
        .agg(
            F.max("trade_time").alias("newest"),
            F.count("*").alias("trades"),
            F.max(F.col("price").cast("decimal(18,8)")).alias("high"),
        )
    )


def main(mode: str, seconds: float) -> None:
    jars = ",".join(sorted(glob.glob(os.path.expanduser(JARS))))
    spark = (
        SparkSession.builder.master(os.environ.get("RTM_MASTER", "local[2]"))
        .appName("rtm-eval")
        .config("spark.jars", jars)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    print("spark", spark.version, flush=True)
    out = Path(f"/tmp/rtm_out_{mode}.jsonl")
    out.unlink(missing_ok=True)
    writer = (
        candles(spark, Path("/tmp/rtm_bootstrap").read_text().strip())
        .writeStream.outputMode("update")
        .foreach(Writer(out))
        .option("checkpointLocation", f"/tmp/rtm_ckpt_{mode}_{int(time.time())}")
    )
    trigger: dict[str, Any] = (
        {"realTime": "5 seconds"} if mode == "rtm" else {"processingTime": "1 second"}
    )
    try:
        query = writer.trigger(**trigger).start()
    except Exception as exc:
        print("START FAILED:", type(exc).__name__, str(exc)[:3000], flush=True)
        sys.exit(1)
    Path("/tmp/rtm_ready").touch()
    print("started", flush=True)
    deadline = time.time() + seconds
    while time.time() < deadline and query.isActive:
        time.sleep(2)
        if query.exception():
            print("QUERY FAILED:", str(query.exception())[:3000], flush=True)
            break
    last = query.lastProgress
    print("progress:", json.dumps(last)[:1500] if last else None, flush=True)
    query.stop()
    spark.stop()
    lines = out.read_text().splitlines() if out.exists() else []
    latency = sorted((r["now"] - r["newest"]) / 1000 for r in map(json.loads, lines))
    if latency:
        p50, p99 = latency[len(latency) // 2], latency[int(len(latency) * 0.99)]
        print(f"{mode}: emitted {len(latency)} candle updates, latency newest trade -> "
              f"emitted p50 {p50:.3f}s p99 {p99:.3f}s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
