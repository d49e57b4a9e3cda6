"""The streaming job: Kafka -> parsed trades -> (raw trades, 10 s candles) -> store.

One query reads and parses the topic once; its foreachBatch (:class:`StoreSink`) appends each
micro-batch's trades to ``crypto.trades`` (deduplicated there), then re-derives the 10-second
candles of the windows the batch touched from the stored trades and writes those that changed:
a window appears while it is open and is replaced as trades arrive; open/close are taken by
(trade_time, trade_id), never by arrival order. The query is stateless (no Spark state store,
no shuffle): the store holds the state. Until issue 17 a second query parsed the topic again
and aggregated the windows in Spark state (reports/profiles/drain_capacity.md has the costs).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptolab.bus.security import spark_kafka_options
from cryptolab.errors import StreamingError
from cryptolab.model import MAX_AHEAD_US, MAX_QUOTE, TIME_UNIT
from cryptolab.settings import Settings
from cryptolab.store.client import Store
from cryptolab.store.rollups import RollupKeeper
from cryptolab.streaming.sink import StoreSink

log = logging.getLogger(__name__)

PRICE_TYPE = "decimal(18,8)"


KAFKA_COLUMNS = ("topic", "partition", "offset", "kafka_time", "raw")


READ_SCHEMA = (
    "symbol VARIANT, trade_id BIGINT, price VARIANT, qty VARIANT, trade_time BIGINT, "
    "event_time BIGINT, is_buyer_maker BOOLEAN, ingest_time BIGINT, time_unit VARIANT"
)
"""The Trade JSON as Spark reads it. Text fields are VARIANT so that their JSON type can be
checked: a plain STRING field would turn ``97000.123456789012345`` (a number) or ``true`` into
text silently, and the number through a double. ``time_unit`` is ``"us"`` (this release:
microsecond times) or absent (earlier releases: milliseconds), see :mod:`cryptolab.model`."""
SYMBOL_PATTERN = "^[A-Za-z0-9]{1,32}$"
DECIMAL_PATTERN = "^-?[0-9]+([.][0-9]+)?$"
"""A plain decimal as Binance writes it ("97000.01000000"): no exponent, "+", spaces or
non-ASCII digits, which a cast would otherwise accept ("-" is read, to say "non-positive")."""
TOO_PRECISE_PATTERN = "[.][0-9]{8}[0-9]*[1-9]"
"""More than 8 significant decimals: a cast to Decimal(18, 8) would round them away."""


def read_trades(spark: Any, settings: Settings, bootstrap: str) -> Any:
    """Kafka topic -> every record parsed with the explicit schema, plus its Kafka position,
    raw text and a ``reason`` column: null for a valid trade, else why it is quarantined."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", settings.topic)
        .option("startingOffsets", settings.starting_offsets)
        .option("failOnDataLoss", "true")
        .options(**spark_kafka_options(settings))
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
    return parse_values(reader.load())


def parse_values(records: Any) -> Any:
    """Kafka records (``value`` bytes, position, timestamp) -> trade columns and ``reason``.

    Another producer may share the topic, so any value can arrive: a null (tombstone), bytes
    that are not UTF-8 or not JSON, wrong JSON types, out-of-range numbers. None of them may
    fail the query; each becomes a row with a reason."""
    from pyspark.sql import functions as F

    parsed = records.select(
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_time"),
        F.col("value").cast("string").alias("raw"),
        F.expr("is_valid_utf8(value)").alias("is_utf8"),
    ).select(
        *KAFKA_COLUMNS,
        "is_utf8",
        F.expr("try_parse_json(raw) IS NOT NULL").alias("is_json"),
        F.from_json(F.col("raw"), READ_SCHEMA).alias("t"),
    )
    # Each text field's JSON type and text once per row, in their own projections (Spark keeps
    # a projection whose expensive columns are used more than once): inlined, the type check
    # ran ~10 times per row and the per-trade cost of the parse was ~35 % higher.
    typed = parsed.select(
        *KAFKA_COLUMNS,
        "is_utf8",
        "is_json",
        "t",
        *(F.expr(f"schema_of_variant(t.{name})").alias(f"{name}_type") for name in TEXT_FIELDS),
        F.expr("try_variant_get(t.time_unit, '$', 'string')").alias("unit"),
        F.expr("schema_of_variant(t.time_unit)").alias("unit_type"),
    )
    texts = typed.select(
        *KAFKA_COLUMNS,
        "is_utf8",
        "is_json",
        "t",
        "symbol_type",
        *(_text(name).alias(f"{name}_text") for name in TEXT_FIELDS),
        F.when(F.col("unit_type").isNull(), F.lit("ms"))
        .when((F.col("unit_type") == "STRING") & (F.col("unit") == TIME_UNIT), F.lit("us"))
        .alias("unit"),
    )
    # try_cast and range checks: under ANSI mode a plain cast of a bad value would fail the
    # whole query; a bad row must be quarantined instead.
    rows = texts.select(
        F.coalesce(F.col("topic"), F.lit("")).alias("topic"),
        "partition",
        "offset",
        "kafka_time",
        F.coalesce(F.col("raw"), F.lit("")).alias("raw"),
        "is_utf8",
        "is_json",
        "symbol_type",
        "unit",
        F.col("symbol_text").alias("symbol"),
        F.col("t.trade_id").alias("trade_id"),
        _decimal("price_text").alias("price"),
        _decimal("qty_text").alias("qty"),
        _timestamp("t.trade_time").alias("trade_time"),
        _timestamp("t.event_time").alias("event_time"),
        F.col("t.is_buyer_maker").alias("is_buyer_maker"),
        _timestamp("t.ingest_time").alias("ingest_time"),
        "price_text",
        "qty_text",
    )
    return rows.withColumn("reason", _reason()).drop(
        "is_utf8", "is_json", "symbol_type", "unit", "price_text", "qty_text"
    )


TEXT_FIELDS = ("symbol", "price", "qty")
"""The VARIANT fields of READ_SCHEMA: each must be a JSON string."""


MAX_MILLIS = 10_413_791_999_999  # 2299-12-31T23:59:59.999Z, the end of ClickHouse DateTime64
MAX_MICROS = MAX_MILLIS * 1000 + 999


def _text(name: str) -> Any:
    """VARIANT field ``t.<name>`` -> its text when it is a JSON string (``<name>_type``), else
    null."""
    from pyspark.sql import functions as F

    return F.when(
        F.col(f"{name}_type") == "STRING", F.expr(f"try_variant_get(t.{name}, '$', 'string')")
    )


def _decimal(text_column: str) -> Any:
    """A text column -> Decimal(18, 8) when it is a plain decimal string that fits exactly."""
    from pyspark.sql import functions as F

    text = F.col(text_column)
    exact = text.rlike(DECIMAL_PATTERN) & ~text.rlike(TOO_PRECISE_PATTERN)
    return F.when(exact, text.try_cast(PRICE_TYPE))


def _timestamp(name: str) -> Any:
    """Epoch microseconds (``unit`` "us") or milliseconds ("ms") -> timestamp, or null when out
    of range or of unknown unit (never an error)."""
    from pyspark.sql import functions as F

    column, unit = F.col(name), F.col("unit")
    return F.when((unit == "us") & column.between(0, MAX_MICROS), F.timestamp_micros(column)).when(
        (unit == "ms") & column.between(0, MAX_MILLIS), F.timestamp_millis(column)
    )


def _reason() -> Any:
    """Why a parsed row cannot be used (null when it can): not JSON, schema mismatch or bad
    values. The rules are the producer's (:func:`cryptolab.model.parse_frame`)."""
    from pyspark.sql import functions as F

    reason = F.when(F.col("raw") == "", F.lit("empty value"))
    # raw shows invalid bytes as U+FFFD, which could otherwise make a different valid frame
    reason = reason.when(~F.col("is_utf8"), F.lit("not UTF-8"))
    reason = reason.when(~F.col("is_json"), F.lit("invalid JSON"))
    reason = reason.when(F.col("symbol_type").isNull(), F.lit("schema mismatch: symbol missing"))
    reason = reason.when(F.col("unit").isNull(), F.lit(f"time_unit is not {TIME_UNIT!r} or absent"))
    reason = reason.when(
        F.col("symbol").isNull() | ~F.col("symbol").rlike(SYMBOL_PATTERN),
        F.lit("symbol is not 1-32 ASCII letters and digits"),
    )
    for name in ("trade_id", "trade_time", "event_time", "is_buyer_maker", "ingest_time"):
        reason = reason.when(F.col(name).isNull(), F.lit(f"schema mismatch: {name}"))
    reason = reason.when(F.col("trade_id") < 0, F.lit("negative trade_id"))
    ahead = MAX_AHEAD_US // 1_000_000
    reason = reason.when(
        F.col("trade_time") > F.col("ingest_time") + F.expr(f"INTERVAL {ahead} SECONDS"),
        F.lit(f"trade_time more than {ahead} s after ingest_time"),
    )
    for name in ("price", "qty"):
        reason = reason.when(
            F.col(f"{name}_text").isNull(), F.lit(f"{name} is not a decimal string")
        )
        reason = reason.when(F.col(name).isNull(), F.lit(f"{name} is not a Decimal(18,8)"))
    reason = reason.when(F.col("price") <= 0, F.lit("non-positive price"))
    reason = reason.when(F.col("qty") <= 0, F.lit("non-positive qty"))
    # else the sum in a candle overflows Decimal(38, 16) and fails the query (ANSI mode)
    return reason.when(F.col("price") * F.col("qty") > MAX_QUOTE, F.lit("price x qty too large"))


def _offsets(progress: Any) -> dict[int, int]:
    """Kafka end offsets (partition -> next offset) that a query progress has processed."""
    if progress is None:
        return {}
    data = json.loads(progress.json) if hasattr(progress, "json") else progress
    result: dict[int, int] = {}
    for source in data.get("sources", []):
        end = source.get("endOffset")
        if isinstance(end, str):
            end = json.loads(end)
        for partitions in (end or {}).values():
            for part, offset in partitions.items():
                result[int(part)] = max(result.get(int(part), 0), int(offset))
    return result


@dataclass
class StreamingJob:
    """The streaming query of one pipeline (``queries`` has one: ``"stream"``)."""

    spark: Any
    settings: Settings
    bootstrap: str
    store: Store
    queries: dict[str, Any] = field(default_factory=dict)
    sink: StoreSink | None = None
    metrics: Any = None
    rollups: RollupKeeper | None = None

    @property
    def checkpoint_root(self) -> Path:
        return self.settings.checkpoint_dir / f"{self.settings.topic}.{self.store.database}"

    def start(self) -> StreamingJob:
        from cryptolab.streaming.metrics import MetricsRecorder

        sink = StoreSink(
            self.store, self.settings.store_retry_seconds, self.settings.watermark_seconds
        )
        name = f"stream_{self.store.database}"
        self.metrics = MetricsRecorder(self.store, {name}, sink.late)
        self.spark.streams.addListener(self.metrics)
        rows = read_trades(self.spark, self.settings, self.bootstrap)
        trigger = f"{self.settings.trigger_seconds} seconds"
        # the checkpoint of the former trades query: same source, so an existing pipeline
        # continues from where it was
        self.queries["stream"] = (
            rows.writeStream.queryName(name)
            .outputMode("append")
            .option("checkpointLocation", str(self.checkpoint_root / "trades"))
            .trigger(processingTime=trigger)
            .foreachBatch(sink.write_batch)
            .start()
        )
        sink.bind("stream", str(self.queries["stream"].id))
        self.sink = sink
        self.rollups = RollupKeeper(self.store).start()  # the market overview's, kept by the writer
        log.info("streaming started topic=%s trigger=%s", self.settings.topic, trigger)
        return self

    def raise_if_failed(self) -> None:
        for name, query in self.queries.items():
            exc = query.exception()
            if exc is not None:
                if self.sink is not None and self.sink.failure is not None:
                    raise self.sink.failure  # the store gave up: say so, not Spark's traceback
                raise StreamingError(f"streaming query {name!r} failed: {exc}")

    def processed(self) -> dict[str, dict[int, int]]:
        """Per query, the Kafka offsets whose results are committed to the store."""
        return {name: _offsets(q.lastProgress) for name, q in self.queries.items()}

    def caught_up(self, target: dict[int, int]) -> bool:
        """True when every query has written everything up to ``target`` offsets."""
        self.raise_if_failed()
        wanted = {p: o for p, o in target.items() if o > 0}
        for done in self.processed().values():
            if any(done.get(p, 0) < o for p, o in wanted.items()):
                return False
        return True

    def wait_caught_up(
        self,
        target: dict[int, int],
        timeout: float,
        stop: threading.Event | None = None,
        report_every: float = 5.0,
    ) -> bool:
        """Block until every query has written ``target`` offsets to the store (True), or
        ``stop`` is set (False); a failed query raises, and so does ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        last_report = time.monotonic()
        while not self.caught_up(target):
            if stop is not None and stop.is_set():
                return False
            if time.monotonic() > deadline:
                raise StreamingError(
                    f"spark did not catch up with Kafka within {timeout:.0f} s: "
                    f"processed={self.processed()} target={target}"
                )
            if time.monotonic() - last_report >= report_every:
                last_report = time.monotonic()
                log.info("catching up processed=%s target=%s", self.processed(), target)
            time.sleep(0.2)
        log.info("caught up with offsets %s", target)
        return True

    def progress(self) -> dict[str, Any]:
        """Last progress of each query (input and processing rates, batch duration)."""
        report: dict[str, Any] = {}
        for name, query in self.queries.items():
            last = query.lastProgress
            data = json.loads(last.json) if last is not None and hasattr(last, "json") else last
            report[name] = data or {}
        return report

    def stop(self, grace_seconds: float = 30.0, hurry: threading.Event | None = None) -> None:
        """Stop the query between micro-batches: a running batch gets ``grace_seconds``
        to finish (``hurry`` set: none), then the query stops anyway (its checkpoint makes the
        next start redo that batch; the sink's dedup tokens keep the store exact); then record
        the progress of every batch the metrics listener has not received yet."""
        for name, query in self.queries.items():
            deadline = time.monotonic() + grace_seconds
            while query.isActive and query.status.get("isTriggerActive"):
                if time.monotonic() > deadline or (hurry is not None and hurry.is_set()):
                    log.info("stopping query %s during a micro-batch", name)
                    break
                time.sleep(0.05)
            try:
                query.stop()
            except Exception as exc:  # stopping must go on (the listener, the caller)
                log.warning("stopping query %s failed error=%r", name, exc)
        if self.rollups is not None:
            self.rollups.stop()
        if self.metrics is not None:
            self.metrics.flush(list(self.queries.values()))  # also writes the rows held back
            self.spark.streams.removeListener(self.metrics)
            self.metrics.flush()  # anything the listener took meanwhile
