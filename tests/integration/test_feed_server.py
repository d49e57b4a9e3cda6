"""The local Binance-protocol server holds clients to Binance's rules, and the live client keeps
them: pongs within the deadline but never more than 5 messages a second, at most 1024 streams
per connection. REST serves only trades the replay has reached."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import aiohttp

from cryptolab.feeds.live.binance import BinanceFeed, FeedConfig
from cryptolab.feeds.server.app import Faults, ReplayServer
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.frames import trade_key


def run_feed(feed: BinanceFeed, seconds: float, trades: int | None = None) -> list[str | bytes]:
    """Run the feed for ``seconds``, or until it handed on ``trades`` trades (at most 30 s)."""
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + (30.0 if trades else seconds)
        while time.monotonic() < deadline and not (trades and feed.counters.trades >= trades):
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    return list(feed.frames(stop))


def test_fast_pings_are_answered_within_binance_message_limit() -> None:
    """The server pings 20 times a second: the client's pongs stay at <= 5 messages/s and are
    never late, while a client that answers every ping (aiohttp autoping) gets cut off."""
    frames = list(synth_frames(["BTCUSDT"], 30, 5, seed=41))
    faults = Faults(ping_interval=0.05, pong_timeout=1.0)
    with ReplayServer(frames, speed=1.0, faults=faults, port=0, start_now=True) as server:
        feed = BinanceFeed(server.ws_url, server.rest_url, ["BTCUSDT"], FeedConfig())
        got = run_feed(feed, 3.0)
        stats = dict(vars(server.stats))
        naive = asyncio.run(_autoping_client(f"{server.ws_url}/stream?streams=btcusdt@trade"))
        cut = server.stats.rate_violations
    assert got and feed.counters.reconnects == 0
    assert stats["pings_sent"] >= 40 and stats["pongs_received"] >= 8
    assert stats["max_messages_per_second"] <= 5
    assert stats["rate_violations"] == 0 and stats["pong_timeouts"] == 0
    assert naive < 3.0 and cut == 1, "answering every ping breaks the 5 messages/s limit"


async def _autoping_client(url: str) -> float:
    """Seconds until the server closes a connection that pongs every ping."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=True) as ws:
        async for _ in ws:
            if time.monotonic() - started > 5:
                break
    return time.monotonic() - started


def test_more_than_1024_symbols_are_sharded_over_connections() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", *(f"COIN{i}USDT" for i in range(1028))]
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 10, 10, seed=42))
    with ReplayServer(frames, speed=4.0, port=0) as server:
        feed = BinanceFeed(server.ws_url, server.rest_url, symbols, FeedConfig())
        got = run_feed(feed, 0, trades=len(frames))
    assert server.stats.connections == 2
    assert server.stats.largest_subscription == 1024
    assert sorted(map(trade_key, got)) == sorted(map(trade_key, frames))  # type: ignore[type-var]


def _get(url: str) -> tuple[int, Any, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_historical_trades_serves_reached_trades_like_binance() -> None:
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 10, 10, seed=43))
    ids = sorted(k[1] for k in map(trade_key, frames) if k and k[0] == "BTCUSDT")
    faults = Faults(rest_fail_first=1, retry_after=3)
    server = ReplayServer(frames, speed=None, faults=faults, port=0, start_hold=3600)
    with server:
        rest = f"{server.rest_url}/api/v3/historicalTrades"
        status, body, headers = _get(f"{rest}?symbol=BTCUSDT&fromId={ids[0]}")
        assert (status, body["code"], headers["Retry-After"]) == (429, -1003, "3")
        status, body, headers = _get(f"{rest}?symbol=BTCUSDT&fromId={ids[0]}")
        assert (status, body) == (200, []), "nothing has happened before the replay starts"
        assert headers["X-MBX-USED-WEIGHT-1M"] == "25"
        server.started.set()
        assert server.finished.wait(10)
        status, body, _ = _get(f"{rest}?symbol=BTCUSDT&fromId={ids[5]}&limit=3")
        assert [t["id"] for t in body] == ids[5:8]
        assert set(body[0]) == {
            "id",
            "price",
            "qty",
            "quoteQty",
            "time",
            "isBuyerMaker",
            "isBestMatch",
        }
        _, body, _ = _get(f"{rest}?symbol=btcusdt&limit=2")
        assert [t["id"] for t in body] == ids[-2:], "without fromId: the newest trades"
        status, body, _ = _get(f"{rest}?symbol=DOGEUSDT&fromId=1")
        assert (status, body["code"]) == (400, -1121)
        status, _, _ = _get(f"{rest}?symbol=BTCUSDT&limit=1001")
        assert status == 400


def _rest_times(server: ReplayServer, unit: str | None) -> list[int]:
    request = urllib.request.Request(
        f"{server.rest_url}/api/v3/historicalTrades?symbol=BTCUSDT&fromId=0&limit=1000",
        headers={"X-MBX-TIME-UNIT": unit} if unit else {},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return [item["time"] for item in json.load(response)]


def test_time_unit_opt_in_on_stream_and_rest() -> None:
    """Like Binance: milliseconds unless a client asks for microseconds (timeUnit=MICROSECOND on
    the stream URL, X-MBX-TIME-UNIT on REST), whichever unit the tape holds; the live client
    asks when configured to, and gets every µs digit."""
    frames = list(synth_frames(["BTCUSDT"], 4, 20, seed=43, micros=True))
    taped = [json.loads(f)["data"]["T"] for f in frames]
    assert all(t >= 10**15 for t in taped) and any(t % 1000 for t in taped)
    with ReplayServer(frames, speed=None, port=0) as server:  # plays once the client is on
        micro = BinanceFeed(
            server.ws_url, server.rest_url, ["BTCUSDT"], FeedConfig(time_unit="MICROSECOND")
        )
        got_us = [json.loads(f)["data"]["T"] for f in run_feed(micro, 10.0, len(frames))]
        server.finished.wait(10)
        milli = BinanceFeed(server.ws_url, server.rest_url, ["BTCUSDT"], FeedConfig())
        rest_ms, rest_us = _rest_times(server, None), _rest_times(server, "MICROSECOND")
        bad = urllib.request.Request(
            f"{server.rest_url}/api/v3/historicalTrades?symbol=BTCUSDT",
            headers={"X-MBX-TIME-UNIT": "NANOSECOND"},
        )
        try:
            urllib.request.urlopen(bad, timeout=10)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
    assert got_us == taped
    assert rest_us == taped and rest_ms == [t // 1000 for t in taped]
    assert status == 400
    assert milli.config.time_unit == "MILLISECOND"


def test_a_millisecond_tape_served_in_microseconds() -> None:
    frames = list(synth_frames(["BTCUSDT"], 4, 20, seed=44))
    taped = [json.loads(f)["data"]["T"] for f in frames]
    with ReplayServer(frames, speed=None, port=0) as server:
        feed = BinanceFeed(
            server.ws_url, server.rest_url, ["BTCUSDT"], FeedConfig(time_unit="MICROSECOND")
        )
        got = [json.loads(f)["data"] for f in run_feed(feed, 10.0, len(frames))]
    assert [d["T"] for d in got] == [t * 1000 for t in taped]
    assert all(d["E"] >= 10**15 for d in got)
