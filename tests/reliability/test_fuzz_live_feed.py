"""Bad input, fuzzed, through the live-feed client: generated frames, binary WebSocket messages
among them, sent by the local Binance-protocol server to the real client (``BinanceFeed``), then
through the real producer into Kafka, between good trades.

The fuzz frames are drawn like those of ``test_fuzz_feed.py`` (``frames.generate``, fixed seed;
kinds ``binary``, ``utf-16``, ``utf-8 bytes`` and ``as is``), keeping the bad ones the client
hands on as non-trade frames (sent to a ``btcusdt@trade`` subscriber, not a trade, not a
``serverShutdown``). A binary message that is UTF-8 is the same frame as text; one that is
not is handed on as bytes, so its DLQ record keeps them exactly (``raw_base64``).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from cryptolab.feeds.live.binance import BinanceFeed
from cryptolab.feeds.live.config import FeedConfig
from cryptolab.feeds.server.app import ReplayServer
from cryptolab.feeds.server.tapes import ServerTape
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.frames import is_server_shutdown, trade_key
from tests.integration.feed_harness import (
    assert_same_trades,
    expected_rows,
    kafka_rows,
    new_producer,
    publish_until,
)
from tests.reliability.frames import classify_frame, feed_frames, generate
from tests.reliability.results import record
from tests.reliability.test_fuzz_feed import dlq_view, read_topic

KINDS = {"binary": 300, "utf-16": 100, "utf-8 bytes": 200, "as is": 400}


def as_received(frame: str | bytes) -> str | bytes:
    """What the client hands on: text, or bytes for a binary message that is not UTF-8."""
    try:
        return frame.decode("utf-8") if isinstance(frame, bytes) else frame
    except UnicodeDecodeError:
        return frame


def delivered_as_other(frame: str | bytes) -> bool:
    """Sent to a btcusdt@trade subscriber, and handed on by the client as a non-trade frame."""
    stream = ServerTape([frame]).frames[0][2]
    received = as_received(frame)
    shutdown = isinstance(received, str) and is_server_shutdown(received)
    return stream in (None, "btcusdt@trade") and trade_key(received) is None and not shutdown


def test_fuzzed_frames_through_the_live_client_reach_the_dlq(
    kafka_bootstrap: str, make_settings: Any, tmp_path: Path
) -> None:
    fuzz = [
        f
        for kind, count in KINDS.items()
        for f in generate(feed_frames(kind), count)
        if delivered_as_other(f) and classify_frame(f) is not None
    ]
    assert sum(isinstance(f, bytes) for f in fuzz) > 200
    good = list(synth_frames(["BTCUSDT"], 20, 20, seed=31))
    tape: list[str | bytes] = []
    for i, frame in enumerate(good):  # fuzz frames between the good ones
        tape.append(frame)
        tape += fuzz[i * len(fuzz) // len(good) : (i + 1) * len(fuzz) // len(good)]
    settings = make_settings()
    producer = new_producer(settings, kafka_bootstrap)
    started = time.monotonic()
    with ReplayServer(tape, speed=None, port=0) as server:
        feed = BinanceFeed(server.ws_url, server.rest_url, ["BTCUSDT"], FeedConfig())
        publish_until(
            feed,
            producer,
            lambda: (
                server.finished.is_set()
                and feed.counters.trades >= len(good)
                and producer.stats.dlq >= len(fuzz)
            ),
        )
        binary_sent = sum(isinstance(f, bytes) for f in fuzz)
    producer.close()
    seconds = time.monotonic() - started
    trades, _ = kafka_rows(kafka_bootstrap, settings.topic)
    dead = [orjson.loads(r.value) for r in read_topic(kafka_bootstrap, settings.dlq_topic)]
    with_reason = [d for d in dead if d.get("reason")]
    counters_match = (producer.stats.trades, producer.stats.dlq) == (len(good), len(fuzz))
    record(
        "fuzz",
        "live client (binary WS frames) -> producer -> Kafka",
        cases=len(tape),
        bad_cases=len(fuzz),
        binary_cases=binary_sent,
        in_dlq_or_quarantine=len(with_reason),
        trades_in_topic=sum(len(v) for v in trades.values()),
        counters_match=counters_match,
        crashes=0,
        seconds=round(seconds, 1),
    )
    assert_same_trades(trades, expected_rows(good, tmp_path))
    assert counters_match and len(with_reason) == len(dead) == len(fuzz)
    assert Counter((d["raw"], d.get("raw_base64")) for d in dead) == Counter(map(dlq_view, fuzz))
