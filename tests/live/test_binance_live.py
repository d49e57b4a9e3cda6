"""Real Binance for 30 s (deselected by default; run with `pytest -m live tests/live`).

Needs network access to stream.binance.com:9443 and api.binance.com."""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import pytest

from cryptolab.feeds.live.binance import BinanceFeed, probe
from cryptolab.frames import trade_key
from cryptolab.model import parse_frame
from cryptolab.settings import load_settings

pytestmark = pytest.mark.live


def test_thirty_seconds_of_real_binance_trades_are_gap_free(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, symbols="BTCUSDT,ETHUSDT")
    reason = probe(settings.binance_ws_url, settings.symbols, 10.0)
    assert reason is None, f"Binance is unreachable from here ({reason}): run live tests online"
    feed = BinanceFeed.from_settings(settings)
    stop = threading.Event()
    timer = threading.Timer(30.0, stop.set)
    timer.start()
    frames = list(feed.frames(stop))
    timer.cancel()

    ids: dict[str, list[int]] = defaultdict(list)
    for frame in frames:
        trade = parse_frame(frame)  # every frame is a well-formed trade
        assert trade_key(frame) == (trade.symbol, trade.trade_id)
        ids[trade.symbol].append(trade.trade_id)
    assert set(ids) == {"BTCUSDT", "ETHUSDT"}, f"no trades in 30 s? {feed.counters}"
    for symbol, seen in ids.items():
        assert seen == list(range(seen[0], seen[0] + len(seen))), f"{symbol}: not consecutive"
    assert feed.counters.trades_lost == 0 and feed.counters.messages > 0
    saved = (tmp_path / "feed" / "binance_last_trade_ids.json").read_text()
    assert str(ids["BTCUSDT"][-1]) in saved, "the last ids are saved for the next start"
