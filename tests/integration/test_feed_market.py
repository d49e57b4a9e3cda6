"""The live client following the whole market against the local Binance server: every trading
symbol subscribed and none other, a listing and a delisting followed while running, 2,000
streams subscribed without breaking any of Binance's connection limits."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from cryptolab.feeds.live.binance import BinanceFeed, FeedConfig
from cryptolab.feeds.live.universe import resolve_symbols
from cryptolab.feeds.server.app import Faults, Market, ReplayServer
from cryptolab.feeds.tapes.synth import market_frames, market_rates, market_symbols
from cryptolab.frames import trade_key
from cryptolab.settings import load_settings
from tests.market_tape import market_tape, streams


def follow_market(server: ReplayServer, **overrides: Any) -> BinanceFeed:
    settings = load_settings(
        symbols="all",
        binance_ws_url=server.ws_url,
        binance_rest_url=server.rest_url,
        **overrides,
    )
    feed = BinanceFeed.from_settings(settings, persist=False, symbols=resolve_symbols(settings))
    return feed


def collect(feed: BinanceFeed, until: Any, timeout: float) -> tuple[list[str | bytes], Any]:
    """Run the feed until ``until()`` (or ``timeout``); returns its frames and what ``until``
    saw last (read while the feed still runs)."""
    stop = threading.Event()
    seen: list[Any] = []

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = until()
            if result:
                seen.append(result)
                break
            time.sleep(0.1)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    frames = list(feed.frames(stop))
    return frames, seen[-1] if seen else None


def keys_of(frames: list[str | bytes]) -> Counter[tuple[str, int]]:
    return Counter(k for k in map(trade_key, frames) if k is not None)


def test_listings_and_delistings_are_followed_and_idle_symbols_never_subscribed() -> None:
    tape = market_tape()
    with ReplayServer(tape.frames, speed=1.0, port=0, market=tape.market) as server:
        feed = follow_market(server, symbols_refresh_seconds=2.0)
        assert set(feed.symbols) == tape.trading_at_end - {tape.listed} | {tape.delisted}

        def finished() -> list[set[str]] | None:
            if not server.finished.is_set() or feed.counters.trades < len(tape.expected):
                return None
            return server.subscriptions()

        frames, subscriptions = collect(feed, finished, timeout=90)
        stats = server.stats
    got = keys_of(frames)
    info = f"feed={feed.counters.as_dict()} server={stats}"
    assert subscriptions is not None, "the replay did not end with every trade received: " + info
    missing, extra = sorted(tape.expected - set(got)), sorted(set(got) - tape.expected)
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}; {info}"
    assert max(got.values()) == 1, "each trade once"
    listed_ids = sorted(i for s, i in got if s == tape.listed)
    assert listed_ids == list(range(len(listed_ids))), "the listing from its first trade, id 0"
    assert feed.counters.trades_backfilled > 0, "its first trades came before the subscription"
    assert set().union(*subscriptions) == streams(tape.trading_at_end), "delisted dropped"
    assert not set().union(*subscriptions) & streams(set(tape.idle))
    c = feed.counters
    assert (c.listed, c.delisted, c.symbols) == (1, 1, len(tape.trading_at_end)), info
    assert c.trades_lost == 0 and c.reconnects == 0, info
    assert stats.exchange_info_requests >= 10, "re-read every 2 s"
    assert stats.violations() == [], info


def test_2000_streams_are_subscribed_within_every_binance_limit() -> None:
    """2,000 symbols: two connections, each opened with a short URL and the rest subscribed in
    requests, while the server pings 10 times a second (pongs and requests share the limit of
    5 messages a second). Then every connection is cut every 1.5 s: the reconnects stay within
    the attempt limit (server: 12 per 8 s, client: 10; Binance: 300 per 5 min, client 250)."""
    symbols = market_symbols(2000, seed=23)
    frames = list(market_frames(market_rates(symbols, 100.0), 30, 24))
    faults = Faults(ping_interval=0.1, pong_timeout=5.0, attempts_limit=12, attempts_window=8.0)
    server = ReplayServer(frames, speed=1.0, faults=faults, port=0, market=Market.of(symbols))
    with server:
        feed = follow_market(server)
        feed.config = FeedConfig(
            attempts_limit=10, attempts_window=8.0, backoff_base=0.05, backoff_cap=0.3,
            drain_timeout=2.0,
        )  # fmt: skip

        def all_subscribed() -> list[set[str]] | None:
            subs = server.subscriptions()
            return subs if sum(map(len, subs)) == 2000 and feed.counters.streams == 2000 else None

        def cuts() -> bool:
            if not all_subscribed():
                return False
            for _ in range(8):
                time.sleep(1.5)
                server.drop_all()
            time.sleep(2.0)
            return True

        first: list[set[str]] = []

        def subscribed_then_cut() -> bool:
            subs = all_subscribed()
            if subs is None:
                return False
            first.extend(subs)
            return cuts()

        frames_got, done = collect(feed, subscribed_then_cut, timeout=120)
        stats = server.stats
    info = f"feed={feed.counters.as_dict()} server={stats}"
    assert done and first, "2,000 streams never all subscribed: " + info
    assert sorted(map(len, first)) == [976, 1024]
    assert set().union(*first) == streams(set(symbols))
    assert stats.violations() == [], info
    assert stats.max_messages_per_second <= 5 and feed.counters.control_per_s_max <= 5, info
    assert stats.pongs_received >= 20 and stats.pong_timeouts == 0, info
    assert stats.control_requests >= 6, "most streams were subscribed by request, not URL"
    assert stats.drops >= 8 and 10 <= stats.max_attempts_in_window <= 12, (
        "the cuts pushed the client to its attempt limit, and not past the server's: " + info
    )
    assert feed.counters.attempts_in_window <= 10, info
    got = keys_of(frames_got)
    assert max(got.values()) == 1 and set(got) <= {k for k in map(trade_key, frames) if k}
