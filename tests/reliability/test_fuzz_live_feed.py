"""Bad input, fuzzed, through the live-feed client: generated frames, binary WebSocket messages
among them, sent by the local Binance-protocol server to the real client (``BinanceFeed``), then
through the real producer into Kafka, between good trades.

The fuzz frames are drawn like those of ``test_fuzz_feed.py`` (``frames.generate``, a new seed
each run, printed and in the row; kinds ``binary``, ``utf-16``, ``utf-8 bytes`` and ``as is``),
keeping the bad ones the client hands on as non-trade frames (sent to a ``btcusdt@trade``
subscriber, not a trade, not a ``serverShutdown``). A binary message that is UTF-8 is the same
frame as text; one that is not is handed on as bytes, so its DLQ record keeps them exactly
(``raw_base64``).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

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
from tests.reliability.frames import classify_frame, feed_frames, generate, seeded
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


@pytest.mark.row("fuzz", "live client (binary WS frames) -> producer -> Kafka")
def test_fuzzed_frames_through_the_live_client_reach_the_dlq(
    kafka_bootstrap: str, make_settings: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    seed = seeded(request.node.nodeid)
    fuzz = [
        f
        for i, (kind, count) in enumerate(KINDS.items())
        for f in generate(feed_frames(kind), count, seed + i)
        if delivered_as_other(f) and classify_frame(f) is not None
    ]
    assert sum(isinstance(f, bytes) for f in fuzz) > 200
    good = list(synth_frames(["BTCUSDT"], 20, 20, seed=31))
    tape: list[str | bytes] = []
    good_at = set()
    for i, frame in enumerate(good):  # fuzz frames between the good ones
        good_at.add(len(tape))
        tape.append(frame)
        tape += fuzz[i * len(fuzz) // len(good) : (i + 1) * len(fuzz) // len(good)]
    settings = make_settings()
    producer = new_producer(settings, kafka_bootstrap)
    crashes: list[str] = []  # exceptions out of the client or the producer
    started = time.monotonic()
    with ReplayServer(tape, speed=None, port=0) as server:
        feed = BinanceFeed(server.ws_url, server.rest_url, ["BTCUSDT"], FeedConfig())
        try:
            publish_until(
                feed,
                producer,
                lambda: (
                    server.finished.is_set()
                    and feed.counters.trades >= len(good)
                    and producer.stats.dlq >= len(fuzz)
                ),
            )
        except Exception as exc:
            crashes.append(f"{type(exc).__name__}: {exc}"[:300])
        binary_sent = sum(isinstance(f, bytes) for f in fuzz)
    producer.close()
    seconds = time.monotonic() - started
    trades, _ = kafka_rows(kafka_bootstrap, settings.topic)
    dead = [orjson.loads(r.value) for r in read_topic(kafka_bootstrap, settings.dlq_topic)]
    with_reason = [d for d in dead if d.get("reason")]
    counters = (producer.stats.trades, producer.stats.dlq)
    # what the server sent for each fuzz frame: as taped, or with E and T converted to the
    # client's time unit (a frame with µs-sized times, to a millisecond client)
    served = ServerTape(tape)
    unit = FeedConfig().time_unit
    fuzz_at = [n for n, frame in enumerate(tape) if n not in good_at]
    in_dlq = Counter((d["raw"], d.get("raw_base64")) for d in dead)
    sent_bad = Counter(dlq_view(served.text_in(n, unit)) for n in fuzz_at)
    dlq_mismatch = sum(((in_dlq - sent_bad) + (sent_bad - in_dlq)).values())
    reconnects = feed.counters.reconnects  # a bad frame must not cost the connection

    assert not crashes, crashes
    assert_same_trades(trades, expected_rows(good, tmp_path))
    assert counters == (len(good), len(fuzz)), counters
    assert len(with_reason) == len(dead) == len(fuzz), (len(with_reason), len(dead), len(fuzz))
    assert dlq_mismatch == 0, (
        f"{dlq_mismatch} DLQ records differ from the bad frames: in the DLQ only "
        f"{[repr(r)[:200] for r in list(in_dlq - sent_bad)[:3]]}, sent only "
        f"{[repr(r)[:200] for r in list(sent_bad - in_dlq)[:3]]}"
    )
    assert reconnects == 0, f"the client reconnected {reconnects} times"
    record(
        "fuzz",
        "live client (binary WS frames) -> producer -> Kafka",
        cases=len(tape),
        bad_cases=len(fuzz),
        binary_cases=binary_sent,
        in_dlq_or_quarantine=len(with_reason),
        trades_in_topic=sum(len(v) for v in trades.values()),
        counters_match=counters == (len(good), len(fuzz)),
        client_reconnects=reconnects,
        crashes=len(crashes),
        seconds=round(seconds, 1),
    )
