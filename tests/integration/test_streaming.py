"""Real Kafka -> real Spark -> chDB, in this process; candles equal the pandas reference."""

import time
from pathlib import Path
from typing import Any

from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.feeds.synth import synth_frames
from cryptolab.feeds.tape import read_frames, write_frames
from cryptolab.store import open_store, queries
from cryptolab.store.render import render_candles
from cryptolab.streaming.job import StreamingJob
from tests.reference import assert_candles_equal, parse_candles_csv, reference_candles, tape_trades


def wait_caught_up(job: StreamingJob, target: dict[int, int], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not job.caught_up(target):
        assert time.monotonic() < deadline, f"not caught up: {job.processed()} vs {target}"
        time.sleep(0.5)


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
    assert progress["candles"]["numInputRows"] >= 0 and "candles" in progress
