"""Limits and helpers of the live client: backoff, attempt limit, REST weight, frames, state."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptolab.errors import ConfigError, FeedError
from cryptolab.feeds.live.backfill import WeightBudget
from cryptolab.feeds.live.binance import BinanceFeed, FeedState, stream_url
from cryptolab.feeds.live.config import FeedConfig
from cryptolab.feeds.live.connection import AttemptLimiter, Backoff
from cryptolab.frames import (
    is_backfilled,
    is_server_shutdown,
    rest_trade_frame,
    trade_frame,
    trade_key,
)
from cryptolab.model import parse_frame
from cryptolab.settings import load_settings

LATE = 2**62  # µs: the producer's clock, after any trade time a test uses


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(base=0.5, cap=4.0)
    delays = [backoff.next_delay() for _ in range(40)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert all(d <= 0.5 * 2**i for i, d in enumerate(delays[:3]))
    assert max(delays[10:]) > 2.0  # reaches the cap range
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_connection_attempts_stay_within_the_window_limit() -> None:
    clock = Clock()
    limiter = AttemptLimiter(limit=250, window=300.0, clock=clock)
    for _ in range(250):
        assert limiter.delay() == 0.0
        limiter.record()
        clock.now += 0.1
    assert limiter.delay() == pytest.approx(300.0 - 25.0)
    clock.now += 275.0
    assert limiter.delay() == 0.0


def test_weight_budget_spreads_requests_and_obeys_retry_after() -> None:
    clock = Clock()
    budget = WeightBudget(limit=100, window=60.0, share=1.0, clock=clock)
    for _ in range(4):
        assert budget.delay(25) == 0.0
        budget.spend(25)
        clock.now += 1.0
    assert budget.delay(25) == pytest.approx(56.0)  # until the first request leaves the window
    clock.now += 56.0
    assert budget.delay(25) == 0.0
    budget.block(7.0)  # a 429 with Retry-After: 7
    assert budget.delay(25) == pytest.approx(7.0)
    clock.now += 7.0
    budget.observe_used(90, 25)  # the server says the minute is nearly used up
    assert budget.delay(25) == pytest.approx(60.0)


def test_config_refuses_values_that_break_binance_limits() -> None:
    with pytest.raises(ValueError, match="max_streams"):
        FeedConfig(max_streams=1025)
    with pytest.raises(ValueError, match="5 messages"):
        FeedConfig(control_interval=0.1)


def test_stream_url_is_lowercase_and_capped() -> None:
    url = stream_url("wss://stream.binance.com:9443/", ["BTCUSDT", "EthUsdt"])
    assert url == "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade"
    with pytest.raises(ValueError, match="1024"):
        stream_url("ws://x", [f"S{i}" for i in range(1025)])


def test_microseconds_are_asked_for_like_binance_documents_it() -> None:
    url = stream_url("wss://stream.binance.com:9443", ["BTCUSDT"], "MICROSECOND")
    assert url == "wss://stream.binance.com:9443/stream?streams=btcusdt@trade&timeUnit=MICROSECOND"
    settings = load_settings(binance_time_unit="microsecond")
    feed = BinanceFeed.from_settings(settings, persist=False)
    assert feed.config.time_unit == "MICROSECOND"
    with pytest.raises(ConfigError, match="BINANCE_TIME_UNIT"):
        load_settings(binance_time_unit="NANOSECOND")


def test_server_shutdown_is_recognised_in_every_shape() -> None:
    assert is_server_shutdown('{"e":"serverShutdown","E":1}')
    assert is_server_shutdown('{"stream":"x","data":{"e":"serverShutdown","E":1}}')
    assert is_server_shutdown('{"event":{"e":"serverShutdown","E":1}}')
    assert not is_server_shutdown('{"e":"trade","note":"serverShutdown"}')
    assert not is_server_shutdown("serverShutdown")


def test_a_rest_trade_becomes_a_tagged_frame_the_parser_accepts() -> None:
    item = {
        "id": 28457,
        "price": "4.00000100",
        "qty": "12.00000000",
        "quoteQty": "48.000012",
        "time": 1499865549590,
        "isBuyerMaker": True,
        "isBestMatch": True,
    }
    trade_id, frame = rest_trade_frame("BNBBTC", item)
    trade = parse_frame(frame, ingest_time=LATE)
    assert trade_id == 28457 == trade.trade_id
    assert (trade.price, trade.qty, trade.trade_time, trade.event_time) == (
        "4.00000100",
        "12.00000000",
        1499865549590_000,  # µs: REST gave milliseconds
        1499865549590_000,
    )
    assert trade.is_buyer_maker and trade_key(frame) == ("BNBBTC", 28457)
    assert is_backfilled(frame) and is_backfilled(frame.encode())
    assert not is_backfilled(trade_frame("BNBBTC", 1, "1", "1", 1, True, True))


def test_feed_state_is_kept_per_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "feed" / "ids.json"
    binance = FeedState(path, "https://api.binance.com/")
    assert binance.load() == {}
    binance.save({"BTCUSDT": 5, "ETHUSDT": 9})
    local = FeedState(path, "http://127.0.0.1:9443")
    local.save({"BTCUSDT": 77})
    assert FeedState(path, "https://api.binance.com").load() == {"BTCUSDT": 5, "ETHUSDT": 9}
    assert FeedState(path, "http://127.0.0.1:9443").load() == {"BTCUSDT": 77}
    only_eth = FeedState(path, "https://api.binance.com")
    assert only_eth.load(["ETHUSDT"]) == {"ETHUSDT": 9}, "symbols not fed now are left alone"
    only_eth.save({"ETHUSDT": 10})
    assert FeedState(path, "https://api.binance.com").load() == {"BTCUSDT": 5, "ETHUSDT": 10}
    path.write_text("{not json")
    with pytest.raises(FeedError, match="delete it to start afresh"):
        FeedState(path, "https://api.binance.com").load()


def test_a_handshake_that_never_completes_times_out_at_connect_timeout() -> None:
    """CRYPTOLAB_CONNECT_TIMEOUT_SECONDS bounds each live connection attempt: a server that
    accepts TCP and then says nothing does not hang the shard."""
    import asyncio
    import time

    import aiohttp

    from cryptolab.feeds.live.counters import FeedCounters
    from cryptolab.feeds.live.sequencer import Sequencer
    from cryptolab.feeds.live.shard import Shard

    async def attempt() -> tuple[object, float, int]:
        held: list[asyncio.StreamWriter] = []

        async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # accept, never answer the upgrade

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = FeedConfig(connect_timeout=0.5)
        counters = FeedCounters()
        async with aiohttp.ClientSession() as session:
            sequencer = Sequencer({}, lambda *_: None, lambda _: None, counters, 10)
            attempts = AttemptLimiter(config.attempts_limit, config.attempts_window)
            url = f"ws://127.0.0.1:{port}"
            shard = Shard(0, url, ["BTCUSDT"], session, sequencer, counters, config, attempts)
            started = time.monotonic()
            connection = await shard._open()
            took = time.monotonic() - started
        server.close()
        return connection, took, counters.connect_attempts

    connection, took, attempts = asyncio.run(attempt())
    assert connection is None and attempts == 1
    assert 0.4 < took < 3.0, f"the attempt took {took:.1f} s"
