"""Real Kafka -> real Spark -> chDB, in this process; candles equal the pandas reference."""

import time
from pathlib import Path
from typing import Any

import pytest

from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.cli.render import render_candles
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import read_frames, write_frames
from cryptolab.store import open_store, queries
from cryptolab.store.client import Store
from cryptolab.streaming.job import StreamingJob
from cryptolab.streaming.metrics import MetricsRecorder
from tests.reference import assert_candles_equal, parse_candles_csv, reference_candles, tape_trades


def wait_caught_up(job: StreamingJob, target: dict[int, int], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not job.caught_up(target):
        assert time.monotonic() < deadline, f"not caught up: {job.processed()} vs {target}"
        time.sleep(0.5)


def stream_backlog(spark: Any, settings: Any, bootstrap: str) -> Store:
    """Run the streaming job over what the topic holds now, stop it; return its store."""
    store = open_store(settings)
    job = StreamingJob(spark, settings, bootstrap, store).start()
    try:
        wait_caught_up(job, end_offsets(bootstrap, settings.topic))
    finally:
        job.stop()
    return store


def recorded_input_rows(store: Store) -> dict[str, tuple[int, int, int]]:
    """Per query (trades, candles) in pipeline_metrics, read without FINAL: (rows recorded,
    distinct batches, sum of input rows), so a batch recorded twice or never shows."""
    rows = store.query_rows(
        "SELECT splitByChar('_', query)[1], count(), uniqExact(run_id, batch_id), "
        f"sum(input_rows) FROM {store.table('pipeline_metrics')} GROUP BY query ORDER BY query"
    )
    return {name: (int(n), int(batches), int(total)) for name, n, batches, total in rows}


def in_topic(bootstrap: str, topic: str) -> int:
    return sum(end_offsets(bootstrap, topic).values())


def test_streamed_candles_equal_batch_reference(
    spark: Any, kafka_bootstrap: str, make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(trigger_seconds=0.5)
    tape = tmp_path / "tape.jsonl.gz"
    write_frames(tape, synth_frames(["BTCUSDT", "ETHUSDT"], 90, 25, seed=11, jitter_ms=2000))
    ensure_topics(settings, kafka_bootstrap)
    store = open_store(settings)
    job = StreamingJob(spark, settings, kafka_bootstrap, store).start()
    try:
        producer = TradeProducer(settings, kafka_bootstrap)
        frames = list(read_frames(tape))
        # in two halves, so the job sees windows grow across micro-batches (update mode)
        producer.publish_all(frames[: len(frames) // 2])
        producer.flush()
        wait_caught_up(job, end_offsets(kafka_bootstrap, settings.topic))
        partial = queries.candle_trade_counts(store)
        producer.publish_all(frames[len(frames) // 2 :])
        producer.flush()
        producer.close()
        wait_caught_up(job, end_offsets(kafka_bootstrap, settings.topic))
        progress = job.progress()
    finally:
        job.stop()
    reference = reference_candles(tape_trades(tape))
    actual: dict[Any, Any] = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        actual.update(parse_candles_csv(render_candles(queries.candles(store, symbol), "csv")))
    assert_candles_equal(actual, reference)
    total = sum(c["trades"] for c in reference.values())  # type: ignore[misc]
    assert sum(partial.values()) < total
    assert sum(queries.trade_counts(store).values()) == total
    assert list(progress) == ["stream"], "one query reads and parses the topic once"
    # every Kafka record was read once by the query, and each of its batches recorded once
    published = in_topic(kafka_bootstrap, settings.topic)
    assert published == total
    metrics = recorded_input_rows(store)
    assert set(metrics) == {"stream"}
    for name, (recorded, batches, input_rows) in metrics.items():
        assert recorded == batches >= 2, (name, metrics)  # two halves: at least two batches
        assert input_rows == published, (name, metrics)


def test_rows_spark_cannot_use_are_quarantined_with_a_reason(
    spark: Any, kafka_bootstrap: str, make_settings: Any, tmp_path: Path
) -> None:
    """Another writer on the topic bypasses the producer's checks: Spark keeps going."""
    from kafka import KafkaProducer

    settings = make_settings(trigger_seconds=0.5)
    ensure_topics(settings, kafka_bootstrap)
    good = list(synth_frames(["BTCUSDT"], 30, 10, seed=12))
    tape = tmp_path / "good.jsonl"
    write_frames(tape, good)
    ours = TradeProducer(settings, kafka_bootstrap)
    ours.publish_all(good)
    ours.flush()
    ours.close()
    rogue = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    bad = {
        b"not json at all": "invalid JSON",
        b'{"trade_id": 1}': "schema mismatch: symbol missing",
        # found by tests/reliability/test_fuzz_spark.py: these were stored as trades
        (b'{"symbol":"BTCUSDT","trade_id":3,"price":97000.123456789012,"qty":"1","trade_time":1,'
         b'"event_time":1,"is_buyer_maker":true,"ingest_time":1}'): "price is not a decimal string",
        (b'{"symbol":"BTCUSDT","trade_id":4,"price":"1.123456789","qty":"1","trade_time":1,'
         b'"event_time":1,"is_buyer_maker":true,"ingest_time":1}'): "price is not a Decimal(18,8)",
        (b'{"symbol":true,"trade_id":5,"price":"1","qty":"1","trade_time":1,'
         b'"event_time":1,"is_buyer_maker":true,"ingest_time":1}'): (
            "symbol is not 1-32 ASCII letters and digits"),
        (b'{"symbol":"BTCUSDT","trade_id":-6,"price":"1","qty":"1","trade_time":1,'
         b'"event_time":1,"is_buyer_maker":true,"ingest_time":1}'): "negative trade_id",
        (b'{"symbol":"BTCUSDT","trade_id":7,"price":"1","qty":"1","trade_time":1,'
         b'"event_time":1,"is_buyer_maker":true}'): "schema mismatch: ingest_time",
        # a few hundred of these in one window overflowed the quote volume: query failed
        (b'{"symbol":"BTCUSDT","trade_id":8,"price":"9999999999.99999999","trade_time":1,'
         b'"qty":"9999999999.99999999","event_time":1,"is_buyer_maker":true,"ingest_time":1}'): (
            "price x qty too large"),
        b'{"symbol": "BTCUSDT", "trade_id": "abc"}': "schema mismatch: trade_id",
        (b'{"symbol":"BTCUSDT","trade_id":1,"price":"1.0","qty":"-3","trade_time":1,'
         b'"event_time":1,"is_buyer_maker":true,"ingest_time":1}'): "non-positive qty",
        (b'{"symbol":"BTCUSDT","trade_id":2,"price":"1e40","qty":"1","trade_time":1,'
         b'"event_time":1,"is_buyer_maker":true,"ingest_time":1}'): "price is not a Decimal(18,8)",
    }  # fmt: skip
    for value in bad:
        rogue.send(settings.topic, key=b"BTCUSDT", value=value)
    rogue.flush()
    rogue.close()
    store = stream_backlog(spark, settings, kafka_bootstrap)
    rows = store.query_rows(
        f"SELECT raw, reason FROM {store.table('quarantine')} FINAL ORDER BY offset"
    )
    assert {raw.encode(): reason for raw, reason in rows} == bad
    assert queries.trade_counts(store) == {"BTCUSDT": len(good)}
    assert_candles_equal(
        parse_candles_csv(render_candles(queries.candles(store, "BTCUSDT"), "csv")),
        reference_candles(tape_trades(tape)),
    )
    metrics = recorded_input_rows(store)
    published = in_topic(kafka_bootstrap, settings.topic)
    assert published == len(good) + len(bad)
    assert {name: total for name, (_, _, total) in metrics.items()} == {"stream": published}, (
        metrics
    )


def test_progress_the_listener_has_not_delivered_is_recorded_at_stop(
    spark: Any,
    kafka_bootstrap: str,
    make_settings: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spark hands progress to listeners asynchronously, and events still queued when the
    listener is removed are dropped: on a loaded machine a job stopped right after catching up
    left one query's input rows out of pipeline_metrics (seen on a fresh clone). A listener made
    5 s slow per event stands for that load here; stop() must still leave every batch recorded,
    once. (Without the flush in StreamingJob.stop this records nothing by the time stop returns.)
    """
    delivered: list[int] = []
    original = MetricsRecorder.onQueryProgress

    def slow(self: MetricsRecorder, event: Any) -> None:
        time.sleep(5)
        delivered.append(event.progress.batchId)
        original(self, event)

    monkeypatch.setattr(MetricsRecorder, "onQueryProgress", slow)
    settings = make_settings(trigger_seconds=0.5)
    ensure_topics(settings, kafka_bootstrap)
    frames = list(synth_frames(["BTCUSDT"], 40, 10, seed=13))
    producer = TradeProducer(settings, kafka_bootstrap)
    producer.publish_all(frames)
    producer.flush()
    producer.close()
    store = stream_backlog(spark, settings, kafka_bootstrap)
    delivered_at_stop = len(delivered)
    published = in_topic(kafka_bootstrap, settings.topic)
    assert published == len(frames)
    metrics = recorded_input_rows(store)
    assert set(metrics) == {"stream"}
    for name, (recorded, batches, input_rows) in metrics.items():
        assert recorded == batches, (name, metrics)  # none recorded twice
        assert input_rows == published, (name, metrics)  # none lost
    # the slow listener had indeed not delivered every batch by the time the job stopped
    assert delivered_at_stop < sum(batches for _, batches, _ in metrics.values()), delivered


def test_microsecond_trades_stay_exact_through_kafka_and_spark(
    spark: Any, kafka_bootstrap: str, make_settings: Any, tmp_path: Path
) -> None:
    """A µs stream (timeUnit=MICROSECOND) keeps every digit to the store; a value of an earlier
    release (no time_unit: ms) still reads right; a time_unit it does not know is quarantined."""
    from kafka import KafkaProducer

    settings = make_settings(trigger_seconds=0.5)
    ensure_topics(settings, kafka_bootstrap)
    tape = tmp_path / "micros.jsonl"
    write_frames(tape, synth_frames(["BTCUSDT"], 40, 30, seed=5, micros=True))
    producer = TradeProducer(settings, kafka_bootstrap)
    producer.publish_all(list(read_frames(tape)))
    producer.flush()
    producer.close()
    old = (b'{"symbol":"ETHUSDT","trade_id":9,"price":"3400.5","qty":"0.25","trade_time":'
           b'1793491201234,"event_time":1793491201236,"is_buyer_maker":false,'
           b'"ingest_time":1793491201240}')  # fmt: skip
    bad = {
        old.replace(b'{"symbol"', b'{"time_unit":"ns","symbol"'): "time_unit is not 'us' or absent",
        old.replace(b'{"symbol"', b'{"time_unit":null,"symbol"'): "time_unit is not 'us' or absent",
        old.replace(b'{"symbol"', b'{"time_unit":5,"symbol"'): "time_unit is not 'us' or absent",
    }
    rogue = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for value in [old, *bad]:
        rogue.send(settings.topic, key=b"X", value=value)
    rogue.flush()
    rogue.close()
    store = stream_backlog(spark, settings, kafka_bootstrap)
    reference = tape_trades(tape)
    assert (reference.trade_time % 1000 != 0).mean() > 0.9  # sub-millisecond digits present
    stored = store.query_rows(
        f"SELECT symbol, trade_id, toUnixTimestamp64Micro(trade_time) FROM "
        f"{store.table('trades')} FINAL ORDER BY symbol, trade_id"
    )
    want = sorted(zip(reference.symbol, reference.trade_id, reference.trade_time, strict=True))
    assert stored == [*want, ("ETHUSDT", 9, 1793491201234_000)]
    rows = store.query_rows(f"SELECT raw, reason FROM {store.table('quarantine')} FINAL")
    assert {raw.encode(): reason for raw, reason in rows} == bad
    assert_candles_equal(
        parse_candles_csv(render_candles(queries.candles(store, "BTCUSDT"), "csv")),
        reference_candles(reference),
    )
