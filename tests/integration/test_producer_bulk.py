"""A tape read at max speed is published in batches, like a list: same messages, same DLQ."""

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from cryptolab.bus.producer import BATCH_FRAMES, TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.feeds.source import replay_source
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from cryptolab.model import Trade
from tests.integration.test_producer import consume_all

BAD = ['{"stream":"btcusdt@trade","data":{"e":"trade","p":"1"}}', "}{"]


def _published(bootstrap: str, settings: Any) -> tuple[list[tuple[str, int, str]], list[str]]:
    trades = [Trade.from_json(m.value) for m in consume_all(bootstrap, settings.topic)]
    dlq = [orjson.loads(m.value)["raw"] for m in consume_all(bootstrap, settings.dlq_topic)]
    return sorted((t.symbol, t.trade_id, str(t.price)) for t in trades), dlq


def test_max_speed_replay_is_batched_and_publishes_what_a_list_does(
    kafka_bootstrap: str, make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = list(synth_frames(["BTCUSDT", "ETHUSDT"], 30, 25, seed=8))
    frames = [*good[:700], *BAD, *good[700:]]
    assert len(frames) > 2 * BATCH_FRAMES
    tape = tmp_path / "tape.jsonl"
    write_frames(tape, frames)
    source = replay_source(tape, None)
    assert not source.paced and replay_source(tape, 1.0).paced

    batches: list[int] = []
    original = TradeProducer.publish_batch

    def counting(self: TradeProducer, chunk: Any) -> None:
        batches.append(len(chunk))
        original(self, chunk)

    monkeypatch.setattr(TradeProducer, "publish_batch", counting)
    results = []
    for frames_in in (source.frames(threading.Event()), frames):  # the tape, then a list
        settings = make_settings()
        ensure_topics(settings, kafka_bootstrap)
        producer = TradeProducer(settings, kafka_bootstrap)
        producer.publish_all(frames_in, bulk=not source.paced)
        producer.flush()
        producer.close()
        assert (producer.stats.frames, producer.stats.trades) == (len(frames), len(good))
        assert sum(end_offsets(kafka_bootstrap, settings.topic).values()) == len(good)
        results.append(_published(kafka_bootstrap, settings))
    assert results[0] == results[1]
    assert results[0][1] == BAD
    full, rest = divmod(len(frames), BATCH_FRAMES)
    assert batches == 2 * ([BATCH_FRAMES] * full + [rest])


def test_a_paced_iterator_is_published_frame_by_frame_and_stops(
    kafka_bootstrap: str, make_settings: Any
) -> None:
    settings = make_settings()
    ensure_topics(settings, kafka_bootstrap)
    producer = TradeProducer(settings, kafka_bootstrap)
    stop = threading.Event()
    frames = list(synth_frames(["BTCUSDT"], 10, 20, seed=2))

    def live() -> Any:  # a feed that waits for each frame: nothing may be held back
        for index, frame in enumerate(frames):
            if index:
                # the previous frame is already handed to Kafka when the next one is asked for
                assert producer.stats.trades == index
            if index == 50:
                stop.set()
            yield frame

    producer.publish_all(live(), stop)
    producer.flush()
    producer.close()
    assert producer.stats.trades == 50
    assert sum(end_offsets(kafka_bootstrap, settings.topic).values()) == 50
