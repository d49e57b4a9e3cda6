"""Bad input, fuzzed, on the feed path: 10,000 generated WebSocket frames (text and binary)
through the real producer into the real Kafka broker.

The frames come from hypothesis runs, one per kind of frame
(``frames.generate_mix(feed_frames, FEED_MIX, seed)``: a new seed each run, printed and in the
row, ``FUZZ_SEED=<seed>`` replays it; no shrinking; drawn in bulk so the whole lot goes
through one producer): trade frames with fields replaced by anything (wrong
types, NaN/Infinity, huge numbers), unknown events and streams, garbage, binary frames (invalid
UTF-8, UTF-16), str frames with a lone surrogate, and 50k-100k character frames. The independent
classification (``frames.classify_frame``, stdlib json + Decimal) says which must become trades.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer

from cryptolab.bus.producer import MAX_DLQ_RAW_CHARS, TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.model import Trade
from tests.reliability.frames import (
    FEED_MIX,
    classify_frame,
    expected_trade,
    feed_frames,
    generate_mix,
    seeded,
    split,
)
from tests.reliability.results import record

CASES = 10_000


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of ``topic`` (up to its end offsets now)."""
    wanted = sum(end_offsets(bootstrap, topic).values())
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2_000,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < wanted and time.monotonic() < deadline:
            records.extend(consumer)
    finally:
        consumer.close()
    return records


def dlq_view(frame: str | bytes) -> tuple[str, str | None]:
    """(raw, raw_base64) the DLQ must hold for ``frame``."""
    data = frame if isinstance(frame, bytes) else frame.encode("utf-8", "surrogatepass")
    try:
        return data.decode("utf-8")[:MAX_DLQ_RAW_CHARS], None
    except UnicodeDecodeError:
        raw = data.decode("utf-8", "replace")[:MAX_DLQ_RAW_CHARS]
        return raw, base64.b64encode(data[:MAX_DLQ_RAW_CHARS]).decode()


@pytest.mark.row("fuzz", "feed frames -> producer -> Kafka")
def test_fuzzed_frames_become_trades_or_dlq_records_with_a_reason(
    kafka_bootstrap: str, make_settings: Any, request: pytest.FixtureRequest
) -> None:
    settings = make_settings()
    ensure_topics(settings, kafka_bootstrap)
    frames = generate_mix(feed_frames, FEED_MIX, seeded(request.node.nodeid))
    good, bad = split(frames, classify_frame)
    assert len(frames) >= CASES and len(good) > 1_000 and len(bad) > 1_000
    assert sum(isinstance(f, bytes) for f in bad) > 500  # binary frames are really there

    started = time.monotonic()
    producer = TradeProducer(settings, kafka_bootstrap)
    crashes: list[str] = []  # exceptions out of the producer: a bad frame must never raise
    for step in (lambda: producer.publish_all(frames), lambda: producer.flush(timeout=180),
                 producer.close):  # fmt: skip
        try:
            step()
        except Exception as exc:
            crashes.append(f"{type(exc).__name__}: {exc}"[:300])
    trades = read_topic(kafka_bootstrap, settings.topic)
    dlq = read_topic(kafka_bootstrap, settings.dlq_topic)
    seconds = time.monotonic() - started

    stats = producer.stats
    counters = (stats.frames, stats.trades, stats.dlq, stats.send_errors)
    stored = Counter(
        (
            (t := Trade.from_json(r.value)).symbol,
            t.trade_id,
            t.price,
            t.qty,
            t.trade_time,
            t.event_time,
            t.is_buyer_maker,
        )
        for r in trades
    )
    expected = Counter(expected_trade(f) for f in good)
    lost = sum((expected - stored).values())  # good frames with no (exact) trade in Kafka
    unexpected = sum((stored - expected).values())  # trades no good frame gave (or doubled)
    dead = [orjson.loads(r.value) for r in dlq]
    with_reason = [d for d in dead if isinstance(d.get("reason"), str) and d["reason"]]
    in_dlq, sent_bad = (
        Counter((d["raw"], d.get("raw_base64")) for d in dead),
        Counter(map(dlq_view, bad)),
    )
    dlq_mismatch = sum(((in_dlq - sent_bad) + (sent_bad - in_dlq)).values())
    wrong_key = sum(r.key.decode() != orjson.loads(r.value)["symbol"] for r in trades)

    assert not crashes, crashes
    assert counters == (len(frames), len(good), len(bad), 0), counters
    assert (lost, unexpected) == (0, 0), f"{lost} good frames lost, {unexpected} unexpected"
    assert wrong_key == 0, f"{wrong_key} trades keyed by another symbol"
    assert len(with_reason) == len(dead) == len(bad), (len(with_reason), len(dead), len(bad))
    assert dlq_mismatch == 0, (
        f"{dlq_mismatch} DLQ records differ from the bad frames: in the DLQ only "
        f"{[repr(r)[:200] for r in list(in_dlq - sent_bad)[:3]]}, sent only "
        f"{[repr(r)[:200] for r in list(sent_bad - in_dlq)[:3]]}"
    )
    record(
        "fuzz",
        "feed frames -> producer -> Kafka",
        cases=len(frames),
        bad_cases=len(bad),
        binary_cases=sum(isinstance(f, bytes) for f in frames),
        trades_in_topic=len(trades),
        lost=lost,
        unexpected=unexpected,
        in_dlq_or_quarantine=len(with_reason),
        counters_match=counters == (len(frames), len(good), len(bad), 0),
        crashes=len(crashes),
        seconds=round(seconds, 1),
    )
