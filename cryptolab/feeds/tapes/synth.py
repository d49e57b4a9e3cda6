"""Synthetic but realistic tapes: bursty arrivals, random-walk prices on the real tick size,
quantities on the real lot step, consecutive trade ids per symbol, buyer-maker flags that follow
the price move. Deterministic for a given seed.

A whole market (:func:`market_symbols`, :func:`market_rates`, :func:`market_frames`): many
symbols whose average rates follow a long-tailed (Zipf) law — a few symbols carry most trades,
most symbols trade rarely, as on Binance — generated lazily, so a long tape of thousands of
symbols needs little memory."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import orjson

DEFAULT_START_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z
BURST_SHARE = 0.05
MOVES = (-2, -1, 0, 1, 2)  # price change in ticks per trade
MOVE_P = (0.05, 0.25, 0.4, 0.25, 0.05)


@dataclass(frozen=True)
class Instrument:
    price: Decimal  # starting price
    tick: Decimal  # price tick size
    step: Decimal  # quantity lot step
    typical_qty: float  # median trade size
    first_id: int  # trade id of the first trade


INSTRUMENTS: dict[str, Instrument] = {
    "BTCUSDT": Instrument(
        Decimal("97000.00"), Decimal("0.01"), Decimal("0.00001"), 0.004, 5_400_000_000
    ),
    "ETHUSDT": Instrument(
        Decimal("3600.00"), Decimal("0.01"), Decimal("0.0001"), 0.08, 2_900_000_000
    ),
    "BNBUSDT": Instrument(Decimal("650.00"), Decimal("0.01"), Decimal("0.001"), 0.4, 1_200_000_000),
    "SOLUSDT": Instrument(Decimal("240.00"), Decimal("0.01"), Decimal("0.001"), 2.0, 1_500_000_000),
}
DEFAULT_INSTRUMENT = Instrument(
    Decimal("1.0000"), Decimal("0.0001"), Decimal("0.1"), 50.0, 100_000_000
)


def _fmt(value: Decimal) -> str:
    """Binance formats prices and quantities with 8 decimals."""
    return f"{value:.8f}"


def _symbol_trades(
    symbol: str,
    seconds: float,
    rate: float,
    start_ms: int,
    rng: np.random.Generator,
    unit: int = 1,
    first_id: int | None = None,
) -> Iterator[tuple[int, int, str, str, bool]]:
    """Yield (trade_time, trade_id, price, qty, is_buyer_maker) for one symbol in time order;
    ``unit`` 1 = times in ms, 1000 = in µs."""
    inst = INSTRUMENTS.get(symbol, DEFAULT_INSTRUMENT)
    ticks = int(inst.price / inst.tick)
    trade_id = inst.first_id + int(rng.integers(0, 1_000_000))
    if first_id is not None:
        trade_id = first_id
    t = 0.0
    end = seconds * 1000.0
    second, bursting = -1, False
    while True:
        # Bursts: 5% of seconds trade at 6x the calm rate; 0.8 keeps the average at `rate`.
        intensity = rate * 0.8 * (6.0 if bursting else 1.0)
        t += rng.exponential(1000.0 / max(intensity, 1e-9))
        if t >= end:
            return
        if int(t // 1000) != second:
            second, bursting = int(t // 1000), bool(rng.random() < BURST_SHARE)
        move = int(rng.choice(MOVES, p=MOVE_P))
        ticks = max(1, ticks + move)
        qty_steps = max(1, int(rng.lognormal(np.log(inst.typical_qty / float(inst.step)), 1.0)))
        is_buyer_maker = bool(move < 0 or (move == 0 and rng.random() < 0.5))
        yield (
            start_ms * unit + int(t * unit),
            trade_id,
            _fmt(ticks * inst.tick),
            _fmt(qty_steps * inst.step),
            is_buyer_maker,
        )
        trade_id += 1


def synth_frames(
    symbols: Sequence[str],
    seconds: float,
    rate: float,
    seed: int,
    start_ms: int = DEFAULT_START_MS,
    jitter_ms: int = 0,
    micros: bool = False,
) -> Iterator[str]:
    """Yield combined-stream frames in arrival (``E``) order.

    ``rate`` is the average trades/s per symbol. ``jitter_ms`` > 0 delays each frame's arrival
    by up to that many ms after its trade time, so trades arrive out of trade-time order.
    ``micros``: times in microseconds, like Binance's ``timeUnit=MICROSECOND`` stream (the same
    trades, with the sub-millisecond digits a millisecond tape drops).
    """
    unit = 1000 if micros else 1
    rng = np.random.default_rng(seed)
    streams = []
    for symbol in symbols:
        sym_rng = np.random.default_rng(rng.integers(0, 2**63))
        last_event = 0
        for trade_time, trade_id, price, qty, maker in _symbol_trades(
            symbol, seconds, rate, start_ms, sym_rng, unit
        ):
            if jitter_ms:  # delivery delays that reorder trades
                event_time = trade_time + int(rng.integers(0, jitter_ms + 1)) * unit
            else:  # like Binance: a symbol's trades arrive in id order, a few ms after matching
                event_time = max(last_event, trade_time + int(rng.integers(1, 6)) * unit)
            last_event = event_time
            streams.append((event_time, symbol, trade_time, trade_id, price, qty, maker))
    heapq.heapify(streams)
    while streams:
        yield _frame(*heapq.heappop(streams))


Arrival = tuple[int, str, int, int, str, str, bool]
"""(event_time, symbol, trade_time, trade_id, price, qty, is_buyer_maker)"""


def _frame(
    event_time: int, symbol: str, trade_time: int, trade_id: int, price: str, qty: str, maker: bool
) -> str:
    frame = {
        "stream": f"{symbol.lower()}@trade",
        "data": {
            "e": "trade",
            "E": event_time,
            "s": symbol,
            "t": trade_id,
            "p": price,
            "q": qty,
            "T": trade_time,
            "m": maker,
            "M": True,
        },
    }
    return orjson.dumps(frame).decode()


# -- a whole market ----------------------------------------------------------------------------
TOP_SYMBOLS = (
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "BTCFDUSD", "ETHBTC",
    "ADAUSDT", "SUIUSDT", "PEPEUSDT", "TRXUSDT", "LINKUSDT", "ETHFDUSD", "AVAXUSDT", "BTCUSDC",
)  # fmt: skip
QUOTE_WEIGHTS = {
    "USDT": 0.34, "BTC": 0.14, "FDUSD": 0.1, "USDC": 0.1, "TRY": 0.08, "ETH": 0.06, "BNB": 0.05,
    "EUR": 0.05, "BRL": 0.03, "JPY": 0.02, "DAI": 0.01, "PLN": 0.01, "ARS": 0.01,
}  # fmt: skip
"""Roughly how Binance spot's symbols split by quote asset."""
ZIPF_EXPONENT = 1.2
"""Rate of the k-th busiest symbol ~ 1/k^1.2: with 2,000 symbols the busiest carries ~20 % of
the trades, the top 10 about half, and the median symbol a few hundredths of a percent."""


def market_symbols(count: int, seed: int = 17) -> list[str]:
    """``count`` distinct symbol names, busiest first: real names for the top ones, then
    made-up bases (3-5 letters) on quote assets drawn like Binance's."""
    rng = np.random.default_rng(seed)
    names = list(TOP_SYMBOLS[:count])
    seen = set(names)
    quotes, weights = list(QUOTE_WEIGHTS), np.array(list(QUOTE_WEIGHTS.values()))
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    while len(names) < count:
        base = "".join(rng.choice(letters, size=int(rng.integers(3, 6))))
        name = base + str(rng.choice(quotes, p=weights / weights.sum()))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def market_rates(
    symbols: Sequence[str], total_rate: float, exponent: float = ZIPF_EXPONENT
) -> dict[str, float]:
    """Average trades/s per symbol, summing to ``total_rate``, long-tailed in list order."""
    weights = 1.0 / np.arange(1, len(symbols) + 1, dtype=float) ** exponent
    rates = total_rate * weights / weights.sum()
    return {symbol: float(rate) for symbol, rate in zip(symbols, rates, strict=True)}


def market_frames(
    rates: Mapping[str, float],
    seconds: float,
    seed: int,
    start_ms: int = DEFAULT_START_MS,
    active: Mapping[str, tuple[float, float]] | None = None,
    first_ids: Mapping[str, int] | None = None,
) -> Iterator[str]:
    """Combined-stream frames of many symbols in arrival (``E``) order, made as they are read.

    ``rates``: average trades/s per symbol (:func:`market_rates`). ``active``: the seconds
    ``(from, to)`` of the tape in which a symbol trades (default: all of it; a listing starts
    later, a delisting ends earlier). ``first_ids``: a symbol's first trade id (a new listing's
    is 0). Like Binance, a symbol's trades arrive in id order, a few ms after matching."""
    rng = np.random.default_rng(seed)
    active, first_ids = active or {}, first_ids or {}
    streams = []
    for symbol, rate in rates.items():
        sym_rng = np.random.default_rng(rng.integers(0, 2**63))
        begin, end = active.get(symbol, (0.0, seconds))
        trades = _symbol_trades(
            symbol, end - begin, rate, start_ms + int(begin * 1000), sym_rng,
            first_id=first_ids.get(symbol),
        )  # fmt: skip
        streams.append(_arrivals(symbol, trades, sym_rng))
    for arrival in heapq.merge(*streams):
        yield _frame(*arrival)


def _arrivals(
    symbol: str, trades: Iterator[tuple[int, int, str, str, bool]], rng: np.random.Generator
) -> Iterator[Arrival]:
    last_event = 0
    for trade_time, trade_id, price, qty, maker in trades:
        last_event = max(last_event, trade_time + int(rng.integers(1, 6)))
        yield last_event, symbol, trade_time, trade_id, price, qty, maker
