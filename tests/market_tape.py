"""A whole-market tape for the local Binance server: a few hundred long-tailed symbols, some of
them not trading (their frames are in the tape, so a client that subscribed them would receive
them), one listed and one delisted during the replay. Shared by the feed and ``up`` tests."""

from __future__ import annotations

from dataclasses import dataclass

from cryptolab.feeds.server.market import Market, StatusChange
from cryptolab.feeds.tapes.synth import market_frames, market_rates, market_symbols
from cryptolab.frames import trade_key

START_MS = 1_793_491_200_000
LISTED = "NEWCOINUSDT"


@dataclass(frozen=True)
class MarketTape:
    frames: list[str]
    market: Market
    expected: frozenset[tuple[str, int]]  # every trade a client following the market receives
    trading_at_end: frozenset[str]
    idle: tuple[str, ...]  # listed, never trading: their trades must not be received
    listed: str
    delisted: str


def market_tape(
    count: int = 300,
    seconds: float = 30.0,
    rate: float = 100.0,
    listed_at: float = 6.0,
    delisted_at: float = 12.0,
    idle: int = 20,
    seed: int = 17,
) -> MarketTape:
    names = market_symbols(count, seed)
    rates = market_rates(names, rate)
    idle_names = tuple(names[50 : 50 + idle])
    delisted = names[4]
    rates.update(dict.fromkeys(idle_names, 1.0))  # they would deliver, if subscribed
    rates[LISTED] = 10.0  # busy from its first second: trades come before the client knows
    active = {LISTED: (listed_at, seconds), delisted: (0.0, delisted_at)}
    frames = list(market_frames(rates, seconds, seed, START_MS, active, {LISTED: 0}))
    initial = {name: "TRADING" for name in names}
    initial.update({name: ("BREAK", "HALT")[i % 2] for i, name in enumerate(idle_names)})
    initial[LISTED] = "PRE_TRADING"
    changes = (
        StatusChange(START_MS + int(listed_at * 1000), LISTED, "TRADING"),
        StatusChange(START_MS + int(delisted_at * 1000), delisted, "BREAK"),
    )
    keys = [k for k in map(trade_key, frames) if k is not None]
    expected = frozenset(k for k in keys if k[0] not in idle_names)
    trading = {n for n, s in initial.items() if s == "TRADING"} - {delisted} | {LISTED}
    return MarketTape(
        frames=frames,
        market=Market(initial, changes),
        expected=expected,
        trading_at_end=frozenset(trading),
        idle=idle_names,
        listed=LISTED,
        delisted=delisted,
    )


def streams(symbols: set[str] | frozenset[str]) -> set[str]:
    return {f"{s.lower()}@trade" for s in symbols}
