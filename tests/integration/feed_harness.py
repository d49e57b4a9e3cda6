"""Run the real live client against the local Binance-protocol server, into real Kafka, and
compare what reached Kafka with the tape (parsed independently by tests/reference.py)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer

from cryptolab.bus.producer import SOURCE_HEADER, TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.feeds.live.binance import BinanceFeed
from cryptolab.feeds.server.app import ReplayServer
from cryptolab.feeds.tapes.tape import write_frames
from cryptolab.model import Trade
from cryptolab.settings import Settings
from tests.reference import tape_trades

Row = tuple[int, str, str, int, bool]  # trade_id, price, qty, trade_time, is_buyer_maker


def expected_rows(frames: list[str], tmp_path: Path) -> dict[str, list[Row]]:
    """Per symbol, the tape's distinct trades in id order (stdlib json + Decimal parsing)."""
    path = tmp_path / "expected.jsonl"
    write_frames(path, frames)
    rows: dict[str, list[Row]] = defaultdict(list)
    trades = tape_trades(path).sort_values(["symbol", "trade_id"])
    columns = ["symbol", "trade_id", "price", "qty", "trade_time", "m"]
    for symbol, trade_id, price, qty, trade_time, m in trades[columns].itertuples(
        index=False, name=None
    ):
        rows[str(symbol)].append(
            (int(trade_id), f"{price:f}", f"{qty:f}", int(trade_time), bool(m))
        )
    return dict(rows)


def publish_until(
    feed: BinanceFeed, producer: TradeProducer, done: Callable[[], bool], timeout: float = 90.0
) -> None:
    """Publish the feed's frames until ``done()`` (or ``timeout``), then stop the feed and let it
    finish (final backfills, saved state)."""
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    producer.publish_all(feed.frames(stop))
    producer.flush()


def replay_done(server: ReplayServer, feed: BinanceFeed, trades: int) -> Callable[[], bool]:
    """The replay ended and the feed handed on ``trades`` unique trades."""
    return lambda: server.finished.is_set() and feed.counters.trades >= trades


def new_producer(settings: Settings, bootstrap: str) -> TradeProducer:
    ensure_topics(settings, bootstrap)
    return TradeProducer(settings, bootstrap)


def kafka_rows(bootstrap: str, topic: str) -> tuple[dict[str, list[Row]], set[tuple[str, int]]]:
    """Per symbol (= Kafka key), the trades in partition order; and the backfill-tagged ids."""
    total = sum(end_offsets(bootstrap, topic).values())
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    rows: dict[str, list[Row]] = defaultdict(list)
    tagged: set[tuple[str, int]] = set()
    try:
        for count, message in enumerate(consumer, start=1):
            trade = Trade.from_json(message.value)
            assert message.key.decode() == trade.symbol
            rows[trade.symbol].append(
                (trade.trade_id, trade.price, trade.qty, trade.trade_time, trade.is_buyer_maker)
            )
            if (SOURCE_HEADER, b"rest-backfill") in (message.headers or []):
                tagged.add((trade.symbol, trade.trade_id))
            if count == total:
                break
    finally:
        consumer.close()
    return dict(rows), tagged


def assert_same_trades(actual: dict[str, list[Row]], expected: dict[str, list[Row]]) -> None:
    """No loss, no duplicate, every field equal, each symbol in id order."""
    assert sorted(actual) == sorted(expected)
    for symbol, want in expected.items():
        got = actual[symbol]
        got_ids, want_ids = [r[0] for r in got], [r[0] for r in want]
        missing = sorted(set(want_ids) - set(got_ids))
        doubled = len(got_ids) - len(set(got_ids))
        assert not missing and not doubled, f"{symbol}: missing {missing[:10]}, {doubled} doubled"
        assert got == want, f"{symbol}: same trades but not in id order or a field differs"


def counters_text(feed: BinanceFeed, server: ReplayServer) -> str:
    return f"feed={feed.counters.as_dict()} server={server.stats}"


def ids_of(frames: list[str], symbol: str) -> list[int]:
    from cryptolab.frames import trade_key

    return [k[1] for k in map(trade_key, frames) if k is not None and k[0] == symbol]
