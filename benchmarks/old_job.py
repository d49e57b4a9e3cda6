"""The streaming job as it was before issue 17, kept as the baseline of the before/after
measurements (``benchmarks.profile_drain --jobs``, ``benchmarks.bench_scale --job two-queries``).

Two queries over the same Kafka source, each reading and parsing the whole topic: ``trades``
(foreachBatch: trades + quarantine) and ``candles`` (watermark, dropDuplicatesWithinWatermark,
10 s window aggregation in Spark state, update mode, foreachBatch: upsert the candles).
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cryptolab.model import TRADE_COLUMNS, WINDOW_SECONDS
from cryptolab.store.schema import CANDLES_10S, QUARANTINE, TRADES
from cryptolab.streaming.job import PRICE_TYPE, StreamingJob, read_trades
from cryptolab.streaming.metrics import MetricsRecorder
from cryptolab.streaming.sink import StoreSink, split_trades


def valid_trades(rows: Any) -> Any:
    from pyspark.sql import functions as F

    return rows.where(F.col("reason").isNull()).select(*TRADE_COLUMNS)


def candles(trades: Any, watermark_seconds: float) -> Any:
    """Trades -> 10 s candles per symbol (update-mode friendly aggregation)."""
    from pyspark.sql import functions as F

    order = F.struct(F.col("trade_time"), F.col("trade_id"))
    zero = F.lit(0).cast(PRICE_TYPE)
    return (
        trades.withWatermark("trade_time", f"{int(watermark_seconds * 1000)} milliseconds")
        .dropDuplicatesWithinWatermark(["symbol", "trade_id"])
        .groupBy(F.window("trade_time", f"{WINDOW_SECONDS} seconds"), F.col("symbol"))
        .agg(
            F.min_by("price", order).alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.max_by("price", order).alias("close"),
            F.sum("qty").alias("volume"),
            F.sum(F.col("price") * F.col("qty")).alias("quote_volume"),
            F.count(F.lit(1)).alias("trades"),
            F.sum(F.when(~F.col("is_buyer_maker"), F.col("qty")).otherwise(zero)).alias(
                "buy_volume"
            ),
            F.min_by("trade_id", order).alias("first_trade_id"),
            F.max_by("trade_id", order).alias("last_trade_id"),
        )
        .select(
            "symbol",
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_volume",
            "trades",
            "buy_volume",
            "first_trade_id",
            "last_trade_id",
        )
    )


def candles_table(table: pa.Table, updated_at_ms: int) -> pa.Table:
    """Add vwap and updated_at to a Spark candle batch and normalise timestamps."""
    quote = pc.cast(table["quote_volume"], pa.float64())
    volume = pc.cast(table["volume"], pa.float64())
    table = table.append_column("vwap", pc.divide(quote, volume))
    for name in ("window_start", "window_end"):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, table[name].cast(pa.timestamp("ms", tz="UTC")))
    stamp = pa.array([updated_at_ms] * table.num_rows, pa.timestamp("ms", tz="UTC"))
    return table.append_column("updated_at", stamp)


class OldSink(StoreSink):
    def write_trades(self, batch: Any, batch_id: int) -> None:
        valid, bad = split_trades(batch.toArrow())
        self._insert("trades", batch_id, TRADES, valid)
        if bad.num_rows:
            self._insert("trades", batch_id, QUARANTINE, bad)
            self.quarantined += bad.num_rows

    def write_candles(self, batch: Any, batch_id: int) -> None:
        table = batch.toArrow()
        if table.num_rows:
            rows = candles_table(table, int(time.time() * 1000))
            self._insert("candles", batch_id, CANDLES_10S, rows)


class TwoQueryJob(StreamingJob):
    """StreamingJob with the two queries of before (a drop-in for the Stack)."""

    def start(self) -> TwoQueryJob:
        database = self.store.database
        self.metrics = MetricsRecorder(self.store, {f"trades_{database}", f"candles_{database}"})
        self.spark.streams.addListener(self.metrics)
        sink = OldSink(self.store, self.settings.store_retry_seconds)
        rows = read_trades(self.spark, self.settings, self.bootstrap)
        trigger = f"{self.settings.trigger_seconds} seconds"
        self.queries["trades"] = (
            rows.writeStream.queryName(f"trades_{database}")
            .outputMode("append")
            .option("checkpointLocation", str(self.checkpoint_root / "trades"))
            .trigger(processingTime=trigger)
            .foreachBatch(sink.write_trades)
            .start()
        )
        sink.bind("trades", str(self.queries["trades"].id))
        self.queries["candles"] = (
            candles(valid_trades(rows), self.settings.watermark_seconds)
            .writeStream.queryName(f"candles_{database}")
            .outputMode("update")
            .option("checkpointLocation", str(self.checkpoint_root / "candles"))
            .trigger(processingTime=trigger)
            .foreachBatch(sink.write_candles)
            .start()
        )
        sink.bind("candles", str(self.queries["candles"].id))
        self.sink = sink
        return self
