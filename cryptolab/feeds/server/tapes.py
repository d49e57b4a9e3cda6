"""A tape as the replay server needs it: frames in order, and each symbol's trades indexed by id
for ``historicalTrades``, limited to what the replay has reached.

Like Binance, the server speaks milliseconds unless a client opts in to microseconds
(``timeUnit=MICROSECOND`` on the stream URL, header ``X-MBX-TIME-UNIT: MICROSECOND`` on REST).
A tape may hold either unit (:func:`cryptolab.model.to_micros` tells them apart): a frame goes
out exactly as taped when the units agree, else with ``E`` and ``T`` converted (µs -> ms
truncates, as Binance's own millisecond times do)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Any

import orjson

from cryptolab.model import MICROS_FROM, to_micros

Frame = tuple[int | None, str | bytes, str | None, tuple[str, int] | None]
"""(event time in µs, raw frame, stream, (symbol, trade id) if a trade); bytes go out as binary
WebSocket messages."""
MILLISECOND, MICROSECOND = "MILLISECOND", "MICROSECOND"


def in_unit(value: int, unit: str) -> int:
    """A raw Binance time (ms or µs) in ``unit``."""
    micros = to_micros(value)
    return micros if unit == MICROSECOND else micros // 1000


class ServerTape:
    def __init__(self, frames: Sequence[str | bytes]) -> None:
        self.frames: list[Frame] = []
        self._units: dict[int, str] = {}  # frame number -> unit of a trade frame's times
        self._converted: dict[tuple[int, str], str] = {}
        by_symbol: dict[str, dict[int, dict[str, Any]]] = {}
        for n, text in enumerate(frames):
            event_time, stream, item = _parse(text)
            key = None
            if item is not None:
                symbol = item.pop("symbol")
                key = (symbol, item["id"])
                by_symbol.setdefault(symbol, {}).setdefault(item["id"], item)
                self._units[n] = MICROSECOND if item["time"] >= MICROS_FROM else MILLISECOND
            micros = None if event_time is None else to_micros(event_time)
            self.frames.append((micros, text, stream, key))
        self._ids = {s: sorted(trades) for s, trades in by_symbol.items()}
        self._items = {s: [by_symbol[s][i] for i in ids] for s, ids in self._ids.items()}
        self._reached: dict[str, int] = {}

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._ids)

    @property
    def trade_count(self) -> int:
        return sum(len(ids) for ids in self._ids.values())

    def text_in(self, number: int, unit: str) -> str | bytes:
        """Frame ``number`` for a client that wants ``unit``: as taped, or converted."""
        text = self.frames[number][1]
        if self._units.get(number, unit) == unit:
            return text
        converted = self._converted.get((number, unit))
        if converted is None:
            message = orjson.loads(text)
            data = message.get("data", message)
            for key in ("E", "T"):  # a fuzzed frame may hold anything else: sent as taped
                value = data.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    data[key] = in_unit(value, unit)
            converted = self._converted[(number, unit)] = orjson.dumps(message).decode()
        return converted

    def reached(self, symbol: str) -> list[dict[str, Any]]:
        """``symbol``'s trades the replay has reached, in id order."""
        reached = self._reached.get(symbol)
        if reached is None:
            return []
        return self._items[symbol][: bisect.bisect_right(self._ids[symbol], reached)]

    def reach(self, symbol: str, trade_id: int) -> None:
        """The replay has reached this trade: from now on REST returns it."""
        if trade_id > self._reached.get(symbol, -1):
            self._reached[symbol] = trade_id

    def history(
        self, symbol: str, from_id: int | None, limit: int, unit: str = MILLISECOND
    ) -> list[dict[str, Any]]:
        """Like Binance: ``limit`` trades from ``from_id`` on, or the newest ``limit`` trades,
        with ``time`` in ``unit``."""
        reached = self._reached.get(symbol)
        if reached is None:
            return []
        ids, items = self._ids[symbol], self._items[symbol]
        end = bisect.bisect_right(ids, reached)
        if from_id is None:
            page = items[max(0, end - limit) : end]
        else:
            start = bisect.bisect_left(ids, from_id)
            page = items[start : min(end, start + limit)]
        return [{**item, "time": in_unit(item["time"], unit)} for item in page]


KLINE_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "1d": 86_400_000}


def klines(
    trades: Sequence[dict[str, Any]], width_ms: int, start_ms: int, end_ms: int, unit: str
) -> list[list[Any]]:
    """Binance-style kline rows of ``trades`` (REST items, any order) for the intervals from the
    first trade's to the last one's that start in ``[start_ms, end_ms]``; an interval without
    trades gets volume 0 and every price the previous close, as Binance's klines do."""
    if not trades:
        return []
    ordered = sorted(trades, key=lambda t: (to_micros(t["time"]), t["id"]))
    buckets: dict[int, list[dict[str, Any]]] = {}
    for trade in ordered:
        buckets.setdefault(to_micros(trade["time"]) // 1000 // width_ms * width_ms, []).append(
            trade
        )
    scale = 1000 if unit == MICROSECOND else 1
    rows: list[list[Any]] = []
    close = Decimal(ordered[0]["price"])
    for opened in range(min(buckets), max(buckets) + 1, width_ms):
        group = buckets.get(opened, [])
        prices = [Decimal(t["price"]) for t in group] or [close]
        qtys = [Decimal(t["qty"]) for t in group]
        with localcontext(prec=60):
            quotes = [p * q for p, q in zip(prices, qtys, strict=False)]
            taker = [i for i, t in enumerate(group) if not t["isBuyerMaker"]]
            values = (prices[0], max(prices), min(prices), prices[-1], sum(qtys, Decimal(0)))
            quote, buy = sum(quotes, Decimal(0)), sum((qtys[i] for i in taker), Decimal(0))
            buy_quote = sum((quotes[i] for i in taker), Decimal(0))
        close = prices[-1]
        if start_ms <= opened <= end_ms:
            rows.append([
                opened * scale, *(f"{v:.8f}" for v in values), (opened + width_ms) * scale - 1,
                f"{quote:.8f}", len(group), f"{buy:.8f}", f"{buy_quote:.8f}", "0",
            ])  # fmt: skip
    return rows


def _parse(text: str | bytes) -> tuple[int | None, str | None, dict[str, Any] | None]:
    """(E, stream, REST item with its symbol) — Nones for what is not a well-formed trade."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(message, dict):
        return None, None, None
    stream = message.get("stream") if isinstance(message.get("stream"), str) else None
    data = message.get("data", message)
    if not isinstance(data, dict):
        return None, stream, None
    event_time = data.get("E") if isinstance(data.get("E"), int) else None
    try:
        item = {
            "symbol": data["s"],
            "id": data["t"],
            "price": data["p"],
            "qty": data["q"],
            "quoteQty": _quote(data["p"], data["q"]),
            "time": data["T"],
            "isBuyerMaker": data["m"],
            "isBestMatch": data.get("M", True),
        }
    except (KeyError, TypeError, ArithmeticError, ValueError):
        return event_time, stream, None
    valid = (
        data.get("e") == "trade"
        and isinstance(item["symbol"], str)
        and isinstance(item["id"], int)
        and not isinstance(item["id"], bool)
        and isinstance(item["time"], int)
        and isinstance(item["isBuyerMaker"], bool)
    )
    return event_time, stream, item if valid else None


def _quote(price: str, qty: str) -> str:
    return format((Decimal(price) * Decimal(qty)).normalize(), "f")
