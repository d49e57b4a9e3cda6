"""A synthetic market that moves together: many symbols whose prices share a market factor that
the lead symbol (BTCUSDT) sets and the others follow a few seconds later, plus a few sector
factors and each symbol's own noise and drift. Trade rates are long-tailed (a few symbols carry
most trades). Deterministic for a given seed.

It is made for the market notebook (breadth, volume concentration, correlation clusters,
lead-lag): unlike :func:`cryptolab.feeds.tapes.synth.synth_frames`, whose symbols walk
independently, it has a structure to find. Prices follow::

    log p_i(t) = log p_i(0) + beta_i * F(t - lag_i) + S_k(i)(t) + drift_i * t + e_i(t)

with ``F`` the lead symbol's own walk (``lag`` 0, ``beta`` 1 for it), ``S_k`` the walk of the
symbol's sector and ``e_i`` its own (sampled only at its trade times, so a long tape of many
symbols needs little memory).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from cryptolab.feeds.tapes.synth import DEFAULT_START_MS, INSTRUMENTS

LEAD = "BTCUSDT"
BASES = (
    "BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "ADA", "SUI", "PEPE", "TRX", "LINK", "AVAX",
    "DOT", "LTC", "SHIB", "UNI", "NEAR", "APT", "ARB", "OP", "FIL", "ATOM", "INJ", "TIA", "SEI",
    "WIF", "BONK", "FET", "AAVE", "ETC",
)  # fmt: skip
QUOTES = ("USDT", "FDUSD", "USDC", "BTC", "EUR", "TRY")
SECTORS = 3
SIGMA = 0.0002
"""Standard deviation of a factor's (and a symbol's own) log-price step per second."""


@dataclass(frozen=True)
class Profile:
    """How one symbol trades and moves."""

    symbol: str
    rate: float  # trades/s on average
    price: float  # at the start
    beta: float  # exposure to the market factor
    lag_s: int  # seconds behind the lead symbol
    sector: int
    drift_per_hour: float  # log-price drift


def factor_symbols(count: int) -> list[str]:
    """``count`` names, busiest first: real bases on USDT, with a pair on another quote asset
    (FDUSD, USDC, BTC, EUR, TRY) after every second one, then made-up names."""
    others = [f"{base}{quote}" for base in BASES[:8] for quote in QUOTES[1:]]
    others = [name for name in others if name != "BTCBTC"]
    names: list[str] = []
    for index, base in enumerate(BASES):
        names.append(f"{base}USDT")
        if index % 2 == 1 and others:
            names.append(others.pop(0))
    names += others
    names += [f"X{i:04d}USDT" for i in range(max(0, count - len(names)))]
    return names[:count]


def profiles(
    symbols: Sequence[str], total_rate: float, seed: int, exponent: float = 1.1
) -> list[Profile]:
    """Rates long-tailed in list order (Zipf ``exponent``), summing to ``total_rate``."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(symbols) + 1, dtype=float) ** exponent
    rates = total_rate * weights / weights.sum()
    result = []
    for index, (symbol, rate) in enumerate(zip(symbols, rates, strict=True)):
        lead = symbol == LEAD
        known = INSTRUMENTS.get(symbol)
        price = float(known.price) if known else float(math.exp(rng.uniform(-4.0, 6.0)))
        result.append(
            Profile(
                symbol=symbol,
                rate=float(rate),
                price=price,
                beta=1.0 if lead else float(rng.uniform(0.5, 1.6)),
                lag_s=0 if lead else int(rng.integers(2, 31)),
                sector=index % SECTORS,
                drift_per_hour=0.0 if lead else float(rng.normal(0.0, 0.02)),
            )
        )
    return result


def _walk(seconds: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(rng.normal(0.0, SIGMA, seconds))])


def _tick(price: float) -> float:
    """A price tick of about 5 significant digits."""
    return 10.0 ** (math.floor(math.log10(price)) - 4)


def _trades(
    profile: Profile,
    factor: np.ndarray,
    sector: np.ndarray,
    seconds: int,
    start_ms: int,
    rng: np.random.Generator,
) -> Iterator[tuple[int, str, int, int, str, str, bool]]:
    """Arrivals (event_time, symbol, trade_time, trade_id, price, qty, maker) in time order."""
    tick = _tick(profile.price)
    own, last_t, last_event, last_price = 0.0, 0.0, 0, None
    trade_id = 1_000_000 + int(rng.integers(0, 1_000_000))
    t = rng.exponential(1.0 / profile.rate)
    while t < seconds:
        own += rng.normal(0.0, SIGMA * math.sqrt(t - last_t))
        second = int(t)
        shifted = factor[max(0, second - profile.lag_s)]
        log_move = profile.beta * shifted + sector[second] + own
        log_move += profile.drift_per_hour * t / 3600.0
        price = max(tick, round(profile.price * math.exp(log_move) / tick) * tick)
        notional = float(rng.lognormal(math.log(300.0), 1.0))
        qty = max(1e-8, round(notional / price, 8))
        maker = bool((last_price is not None and price < last_price) or rng.random() < 0.3)
        trade_time = start_ms + int(t * 1000)
        last_event = max(last_event, trade_time + int(rng.integers(1, 6)))
        yield (last_event, profile.symbol, trade_time, trade_id, f"{price:.8f}",
               f"{qty:.8f}", maker)  # fmt: skip
        trade_id += 1
        last_t, last_price = t, price
        t += rng.exponential(1.0 / profile.rate)


def _frame(arrival: tuple[int, str, int, int, str, str, bool]) -> str:
    event, symbol, trade_time, trade_id, price, qty, maker = arrival
    data = {"e": "trade", "E": event, "s": symbol, "t": trade_id, "p": price, "q": qty,
            "T": trade_time, "m": maker, "M": True}  # fmt: skip
    return orjson.dumps({"stream": f"{symbol.lower()}@trade", "data": data}).decode()


def factor_market_frames(
    symbols: Sequence[str],
    seconds: int,
    total_rate: float,
    seed: int,
    start_ms: int = DEFAULT_START_MS,
) -> Iterator[str]:
    """Combined-stream frames of ``symbols`` (busiest first) in arrival order, made lazily."""
    rng = np.random.default_rng(seed)
    factor = _walk(seconds, rng)
    sectors = [_walk(seconds, rng) for _ in range(SECTORS)]
    streams = []
    for profile in profiles(symbols, total_rate, seed + 1):
        own_rng = np.random.default_rng(rng.integers(0, 2**63))
        sector = sectors[profile.sector] if profile.symbol != LEAD else np.zeros(seconds + 1)
        streams.append(_trades(profile, factor, sector, seconds, start_ms, own_rng))
    for arrival in heapq.merge(*streams):
        yield _frame(arrival)
