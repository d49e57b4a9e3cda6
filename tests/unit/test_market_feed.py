"""Following the whole market: the symbol list from exchangeInfo, unknown symbols named with
their close matches, shards re-planned as listings change, a listing's first trades fetched,
subscription replies told apart from trades, and the long-tailed synthetic market."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from threading import Event

import orjson
import pytest

from cryptolab.errors import ConfigError, FeedError
from cryptolab.feeds.live.binance import plan_shards
from cryptolab.feeds.live.connection import MAX_URL_CHARS, opening_url
from cryptolab.feeds.live.universe import (
    Listing,
    check_symbols,
    parse_exchange_info,
    trading_symbols,
)
from cryptolab.feeds.server.market import Market, StatusChange, control_request, split_symbol
from cryptolab.feeds.tapes.synth import market_frames, market_rates, market_symbols
from cryptolab.frames import control_reply, trade_key
from cryptolab.settings import load_settings
from tests.unit.test_feed_sequencer import Harness, rest

EXCHANGE_INFO = {
    "timezone": "UTC",
    "symbols": [
        {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
         "isSpotTradingAllowed": True},
        {"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC"},
        {"symbol": "LUNAUSDT", "status": "BREAK", "baseAsset": "LUNA", "quoteAsset": "USDT"},
        {"symbol": "OLDUSDT", "status": "HALT", "baseAsset": "OLD", "quoteAsset": "USDT"},
        {"symbol": "MARGUSDT", "status": "TRADING", "baseAsset": "MARG", "quoteAsset": "USDT",
         "isSpotTradingAllowed": False},
        {"symbol": "bad symbol", "status": "TRADING"},
        "not an object",
    ],
}  # fmt: skip


def test_trading_spot_symbols_are_chosen_and_the_rest_skipped_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listings = parse_exchange_info(EXCHANGE_INFO)
    assert [x.symbol for x in listings] == ["BTCUSDT", "ETHBTC", "LUNAUSDT", "OLDUSDT", "MARGUSDT"]
    with caplog.at_level(logging.INFO, logger="cryptolab.feeds.live.universe"):
        assert trading_symbols(listings) == ["BTCUSDT", "ETHBTC"]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["exchangeInfo: skipped 3 symbols not trading (BREAK=1, HALT=1, not spot=1)"]
    assert trading_symbols(listings, "usdt") == ["BTCUSDT"]
    with pytest.raises(FeedError, match="no 'symbols' list"):
        parse_exchange_info({"code": -1, "msg": "oops"})


def test_an_unknown_symbol_is_an_error_naming_close_matches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listings = [Listing(s, "TRADING", "", "") for s in ("BTCUSDT", "BTCUSDC", "ETHUSDT")]
    listings.append(Listing("LUNAUSDT", "BREAK", "LUNA", "USDT"))
    with pytest.raises(ConfigError) as error:
        check_symbols(["BTCUSTD", "ETHUSDT", "QQQQQQ"], listings)
    text = str(error.value)
    assert "BTCUSTD (did you mean BTCUSDT, BTCUSDC?)" in text
    assert "QQQQQQ (no match)" in text and "ETHUSDT" not in text.split("spot:")[1].split(".")[0]
    assert "--symbols" in text
    with caplog.at_level(logging.WARNING):
        assert check_symbols(["BTCUSDT", "LUNAUSDT"], listings) == ["LUNAUSDT"]
    assert "LUNAUSDT=BREAK" in caplog.text


def test_settings_take_all_alone_and_a_quote_only_with_all() -> None:
    settings = load_settings(symbols="all", quote_asset="usdt")
    assert settings.all_symbols and settings.symbols == ("ALL",)
    assert settings.quote_asset == "USDT"
    assert not load_settings(symbols="BTCUSDT").all_symbols
    with pytest.raises(ConfigError, match="stands alone"):
        load_settings(symbols="all,BTCUSDT")
    with pytest.raises(ConfigError, match="goes with CRYPTOLAB_SYMBOLS=all"):
        load_settings(symbols="BTCUSDT", quote_asset="USDT")
    with pytest.raises(ConfigError, match="QUOTE_ASSET"):
        load_settings(symbols="all", quote_asset="US DT")


def test_shards_keep_their_symbols_fill_up_and_end_when_emptied() -> None:
    first = plan_shards([], [f"S{i:04d}" for i in range(2500)], 1024)
    assert [len(s) for s in first] == [1024, 1024, 452]
    assert frozenset().union(*first) == {f"S{i:04d}" for i in range(2500)}
    # delist all of shard 1 and half of shard 0; list 700 new symbols
    kept = (set(first[0]) - {f"S{i:04d}" for i in range(512)}) | set(first[2])
    wanted = kept | {f"N{i:03d}" for i in range(700)}
    second = plan_shards(first, wanted, 1024)
    assert second[1] == frozenset(), "an emptied shard ends"
    assert first[0] - second[0] == {f"S{i:04d}" for i in range(512)}
    assert first[2] <= second[2], "symbols stay on their shard"
    assert all(len(s) <= 1024 for s in second)
    assert frozenset().union(*second) == wanted
    assert len(second) == 3, "room on the live shards is used before opening a new one"


def test_the_opening_url_stays_short_and_the_rest_is_subscribed() -> None:
    symbols = [f"COIN{i}USDT" for i in range(1024)]
    url, initial = opening_url("wss://stream.binance.com:9443", symbols)
    assert len(url) <= MAX_URL_CHARS and 100 < len(initial) < 1024
    assert initial == tuple(symbols[: len(initial)])
    assert url.endswith("/".join(f"{s.lower()}@trade" for s in initial))


def test_subscription_replies_are_told_apart_from_trades() -> None:
    assert control_reply('{"result":null,"id":7}') == (7, None)
    assert control_reply('{"id":8,"result":["btcusdt@trade"]}') == (8, None)
    refused = '{"error":{"code":2,"msg":"Invalid request: too many streams"},"id":9}'
    assert control_reply(refused) == (9, "code=2 Invalid request: too many streams")
    assert control_reply('{"code":2,"msg":"Invalid request","id":3}') == (
        3,
        "code=2 Invalid request",
    )
    trade = '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"id":3}}'
    for other in (trade, '{"e":"serverShutdown","E":1}', "not json", '{"result":null}'):
        assert control_reply(other) is None


def test_the_server_reads_requests_and_moves_statuses_with_the_replay() -> None:
    request = control_request('{"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":1}')
    assert not isinstance(request, str)
    assert (request.method, request.streams, request.id) == ("SUBSCRIBE", ("btcusdt@trade",), 1)
    assert control_request('{"method":"DROP","params":[],"id":1}') == "Unknown method 'DROP'"
    assert "params" in str(control_request('{"method":"SUBSCRIBE","params":[1],"id":1}'))
    assert split_symbol("BTCFDUSD") == ("BTC", "FDUSD") and split_symbol("ETHBTC") == ("ETH", "BTC")
    market = Market.of(
        ["BTCUSDT", "OLDUSDT"],
        [StatusChange(2000, "NEWUSDT", "TRADING"), StatusChange(3000, "OLDUSDT", "BREAK")],
    )
    assert market.statuses(None) == {
        "BTCUSDT": "TRADING", "OLDUSDT": "TRADING", "NEWUSDT": "PRE_TRADING",
    }  # fmt: skip
    assert market.statuses(2500)["NEWUSDT"] == "TRADING"
    assert market.statuses(3000)["OLDUSDT"] == "BREAK"
    listings = parse_exchange_info(orjson.loads(orjson.dumps(market.exchange_info(3000))))
    assert trading_symbols(listings) == ["BTCUSDT", "NEWUSDT"]


def test_a_new_listing_fetches_its_first_trades_over_rest() -> None:
    h = Harness()
    h.seq.follow("NEWUSDT")
    h.feed("NEWUSDT", 5, 6)  # ids 0..4 happened before the subscription took effect
    assert h.ids("NEWUSDT") == [] and len(h.jobs) == 1
    job = h.jobs[0]
    assert (job.first_id, job.last_id, job.listing) == (0, 4, True)
    h.seq.on_backfill(job, [rest("NEWUSDT", i) for i in range(5)])
    h.seq.on_backfill_done(job)
    assert h.ids("NEWUSDT") == [0, 1, 2, 3, 4, 5, 6]
    assert h.counters.trades_lost == 0 and h.counters.trades_backfilled == 5


def test_a_listing_whose_ids_start_above_zero_loses_nothing() -> None:
    h = Harness()
    h.seq.follow("NEWUSDT")
    h.feed("NEWUSDT", 4)
    h.seq.on_backfill(h.jobs[0], [rest("NEWUSDT", i) for i in (1, 2, 3)])
    h.seq.on_backfill_done(h.jobs[0])
    assert h.ids("NEWUSDT") == [1, 2, 3, 4] and h.counters.trades_lost == 0


def test_a_symbol_back_from_a_break_is_followed_from_its_next_trade() -> None:
    h = Harness(max_gap=1_000_000)
    h.seq.follow("OLDUSDT")
    h.feed("OLDUSDT", 750_000, 750_001)
    assert h.ids("OLDUSDT") == [750_000, 750_001] and not h.jobs
    assert h.counters.trades_lost == 0
    h.seq.follow("BTCUSDT", saved_last=41)  # saved by an earlier run: its gap is backfilled
    h.feed("BTCUSDT", 45)
    assert (h.jobs[0].first_id, h.jobs[0].last_id) == (42, 44)
    assert h.seq.last_ids() == {"OLDUSDT": 750_001, "BTCUSDT": 41}


def test_the_synthetic_market_is_long_tailed_lazy_and_honours_listings() -> None:
    symbols = market_symbols(300, seed=3)
    assert len(set(symbols)) == 300 and symbols[:2] == ["BTCUSDT", "ETHUSDT"]
    assert all(s.isalnum() and s.isupper() for s in symbols)
    rates = market_rates(symbols, 100.0)
    assert sum(rates.values()) == pytest.approx(100.0)
    ordered = sorted(rates.values(), reverse=True)
    assert sum(ordered[:10]) > 50 and sum(ordered[150:]) < 10, "a few carry most trades"
    active = {symbols[5]: (20.0, 60.0), symbols[6]: (0.0, 30.0)}
    frames = list(market_frames(rates, 60, 9, 1_000_000, active, {symbols[5]: 0}))
    events = [orjson.loads(f)["data"] for f in frames]
    assert [e["E"] for e in events] == sorted(e["E"] for e in events)
    counts = Counter(e["s"] for e in events)
    assert counts.most_common(1)[0][0] == "BTCUSDT"
    listed = [e for e in events if e["s"] == symbols[5]]
    assert listed[0]["t"] == 0 and min(e["T"] for e in listed) >= 1_000_000 + 20_000
    assert max(e["T"] for e in events if e["s"] == symbols[6]) < 1_000_000 + 30_000
    per_symbol: dict[str, list[int]] = {}
    for key in map(trade_key, frames):
        assert key is not None
        per_symbol.setdefault(key[0], []).append(key[1])
    for ids in per_symbol.values():
        assert ids == list(range(ids[0], ids[0] + len(ids))), "consecutive ids, in order"


def test_the_pipeline_panel_shows_the_connection_counts() -> None:
    from cryptolab.dashboard.panel import pipeline_cells
    from cryptolab.feeds.live.counters import FeedCounters

    counters = FeedCounters(
        symbols=2000, streams=2000, connections=2, streams_per_connection_max=1024,
        control_per_s_max=4, attempts_in_window=3, listed=2, delisted=1,
    )  # fmt: skip
    cells = {
        str(c.id): c.children[1].children  # type: ignore[attr-defined]
        for c in pipeline_cells({"feed": counters.as_dict()})
    }
    assert cells["metric-feed-streams"] == "2,000"
    assert cells["metric-feed-streams-per-connection-max"] == "1,024"
    assert cells["metric-feed-control-per-s-max"] == "4"
    assert cells["metric-feed-attempts-in-window"] == "3"
    assert cells["metric-feed-connections"] == "2"
    assert (cells["metric-feed-listed"], cells["metric-feed-delisted"]) == ("2", "1")


def test_a_replay_keeps_every_symbol_or_those_of_one_quote(tmp_path: Path) -> None:
    from cryptolab.feeds.source import only_symbols, replay_source
    from cryptolab.feeds.tapes.tape import write_frames

    rates = dict.fromkeys(["BTCUSDT", "ETHBTC", "SOLUSDT"], 5.0)
    tape = tmp_path / "m.jsonl"
    write_frames(tape, [*market_frames(rates, 5, 1), "not a frame"])
    source = replay_source(tape, None)

    def symbols(**settings: str) -> Counter[str | None]:
        kept = only_symbols(source, load_settings(**settings))
        return Counter(k[0] if k else None for k in map(trade_key, kept.frames(Event())))

    every = symbols(symbols="all")
    assert set(every) == {"BTCUSDT", "ETHBTC", "SOLUSDT", None}
    assert set(symbols(symbols="all", quote_asset="USDT")) == {"BTCUSDT", "SOLUSDT", None}
    picked = symbols(symbols="ETHBTC")
    assert set(picked) == {"ETHBTC", None} and picked["ETHBTC"] == every["ETHBTC"]
