"""The real live client against the local Binance-protocol server, into a real Kafka broker:
whatever the faults, the trades in Kafka equal the tape — none lost, none doubled, each symbol
in trade-id order."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cryptolab.feeds.live.binance import BinanceFeed, FeedConfig
from cryptolab.feeds.server.app import Faults, ReplayServer, Withhold
from cryptolab.feeds.tapes.synth import synth_frames
from tests.integration.feed_harness import (
    assert_same_trades,
    counters_text,
    expected_rows,
    ids_of,
    kafka_rows,
    new_producer,
    publish_until,
    replay_done,
)

FAST: dict[str, Any] = {
    "backoff_base": 0.1,
    "backoff_cap": 0.5,
    "tail_check_after": 0.5,
    "save_every": 0.2,
}


def test_rotation_and_server_shutdown_switch_over_without_a_gap(
    kafka_bootstrap: str, make_settings: Any, tmp_path: Path
) -> None:
    """A '24-hour' cut every 2.5 s and serverShutdown every 2.5 s: the client always opens the
    next connection first, so nothing is ever missing (no gap, no backfill) or doubled."""
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 20, 12, seed=31))
    faults = Faults(
        max_connection_age=2.5, shutdown_every=2.5, shutdown_grace=1.5, ping_interval=0.5
    )
    config = FeedConfig(rotate_after=1.0, min_overlap=0.2, max_overlap=0.6, **FAST)
    settings = make_settings()
    with ReplayServer(frames, speed=2.5, faults=faults, port=0) as server:
        feed = BinanceFeed(server.ws_url, server.rest_url, ["BTCUSDT", "ETHUSDT"], config)
        producer = new_producer(settings, kafka_bootstrap)
        publish_until(feed, producer, replay_done(server, feed, len(frames)))
        producer.close()
    info = counters_text(feed, server)
    actual, tagged = kafka_rows(kafka_bootstrap, settings.topic)
    assert_same_trades(actual, expected_rows(frames, tmp_path))
    c = feed.counters
    assert server.stats.age_cuts == 0, "the client must rotate before the server's cut: " + info
    assert server.stats.shutdowns_sent >= 2 and c.server_shutdowns >= 2, info
    assert c.rotations >= 5, info
    assert c.duplicates_dropped > 0, "overlapping connections deliver trades twice: " + info
    assert (c.reconnects, c.gaps_found, c.trades_backfilled, len(tagged)) == (0, 0, 0, 0), info


def test_drops_stalls_withheld_trades_and_throttled_rest_lose_nothing(
    kafka_bootstrap: str, make_settings: Any, tmp_path: Path
) -> None:
    """Connections cut every 2 s, silent sockets, 20 trades never streamed, REST answering 429
    twice, symbols sharded over two connections: REST backfill recovers every trade."""
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    frames = list(synth_frames(symbols, 24, 10, seed=32))
    btc = ids_of(frames, "BTCUSDT")
    withheld = Withhold("BTCUSDT", btc[40], btc[59])
    faults = Faults(
        drop_every=2.0,
        stall_every=3.3,
        withhold=(withheld,),
        rest_fail_first=2,
        retry_after=1,
        ping_interval=0.2,
    )
    config = FeedConfig(max_streams=2, silence_timeout=0.8, **FAST)
    settings = make_settings()
    with ReplayServer(frames, speed=2.5, faults=faults, port=0) as server:
        feed = BinanceFeed(server.ws_url, server.rest_url, symbols, config)
        producer = new_producer(settings, kafka_bootstrap)
        publish_until(feed, producer, replay_done(server, feed, len(frames)))
        producer.close()
    info = counters_text(feed, server)
    actual, tagged = kafka_rows(kafka_bootstrap, settings.topic)
    assert_same_trades(actual, expected_rows(frames, tmp_path))
    c = feed.counters
    assert server.stats.withheld == 20 and server.stats.largest_subscription == 2, info
    assert {("BTCUSDT", i) for i in btc[40:60]} <= tagged, "withheld trades come from REST"
    assert len(tagged) == c.trades_backfilled >= 20, info
    assert c.reconnects >= 3 and c.watchdog_timeouts >= 1 and c.gaps_found >= 2, info
    assert c.rest_throttled == 2 == server.stats.rest_throttled, info
    assert c.trades_lost == 0, info


def test_a_restart_backfills_what_happened_while_the_feed_was_down(
    kafka_bootstrap: str, make_settings: Any, tmp_path: Path
) -> None:
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 20, 10, seed=33))
    state = tmp_path / "state" / "ids.json"
    config = FeedConfig(**FAST)
    settings = make_settings()
    with ReplayServer(frames, speed=2.5, port=0) as server:
        producer = new_producer(settings, kafka_bootstrap)
        first = BinanceFeed(server.ws_url, server.rest_url, ["BTCUSDT", "ETHUSDT"], config, state)
        cut = len(frames) * 2 // 5
        publish_until(first, producer, lambda: first.counters.trades >= cut)
        stopped_at = first.counters.trades
        time.sleep(1.5)  # the market goes on while we are down
        second = BinanceFeed(server.ws_url, server.rest_url, ["BTCUSDT", "ETHUSDT"], config, state)
        publish_until(second, producer, replay_done(server, second, len(frames) - stopped_at))
        producer.close()
    info = f"first={first.counters} second={second.counters}"
    actual, tagged = kafka_rows(kafka_bootstrap, settings.topic)
    assert_same_trades(actual, expected_rows(frames, tmp_path))
    assert second.counters.gaps_found >= 2 and second.counters.trades_backfilled > 10, info
    assert len(tagged) == second.counters.trades_backfilled + first.counters.trades_backfilled
