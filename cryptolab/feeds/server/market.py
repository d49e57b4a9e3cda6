"""What the local server says about the market, and the limits it holds clients to.

- :class:`Market`: the symbols ``GET /api/v3/exchangeInfo`` lists, each with a status that may
  change at a moment of the replay (a listing: ``PRE_TRADING`` -> ``TRADING``; a delisting:
  ``TRADING`` -> ``BREAK``), so a client that follows the market can be tested;
- :class:`AttemptWindow`: connection attempts per IP in a sliding window (Binance: 300 per
  5 minutes), over which the server refuses connections and counts a violation;
- :func:`control_request`: a client's SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS request.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

QUOTES = (
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP", "BIDR", "BTC", "ETH", "BNB", "TRY", "EUR",
    "BRL", "JPY", "DAI", "ARS", "PLN", "RON", "ZAR", "UAH", "IDR", "MXN", "COP", "CZK", "SOL",
    "XRP", "DOGE", "TRX", "AUD", "GBP",
)  # fmt: skip
"""Quote assets, to split a symbol's name into base and quote (the longest that fits)."""
CONTROL_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS")


def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTCUSDT`` -> (``BTC``, ``USDT``); a name with no known quote -> (name, ``""``)."""
    for quote in sorted(QUOTES, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, ""


@dataclass(frozen=True)
class StatusChange:
    """``symbol`` has ``status`` from the moment the replay reaches event time ``at_ms``."""

    at_ms: int
    symbol: str
    status: str


@dataclass
class Market:
    """Symbols with their initial status, and status changes during the replay."""

    initial: dict[str, str]
    changes: tuple[StatusChange, ...] = ()

    @classmethod
    def of(cls, symbols: Iterable[str], changes: Sequence[StatusChange] = ()) -> Market:
        """Every symbol ``TRADING`` (a symbol that first appears in ``changes`` starts as
        ``PRE_TRADING``)."""
        initial = dict.fromkeys((s.upper() for s in symbols), "TRADING")
        for change in changes:
            initial.setdefault(change.symbol, "PRE_TRADING")
        return cls(initial, tuple(sorted(changes, key=lambda c: c.at_ms)))

    def statuses(self, now_ms: int | None) -> dict[str, str]:
        """Each symbol's status once the replay has reached ``now_ms`` (None: not started)."""
        status = dict(self.initial)
        for change in self.changes:
            if now_ms is None or change.at_ms > now_ms:
                break
            status[change.symbol] = change.status
        return status

    def exchange_info(self, now_ms: int | None, only: Sequence[str] | None = None) -> Any:
        """The body of ``GET /api/v3/exchangeInfo`` (``only``: the ``symbols`` narrowing)."""
        items = []
        for symbol, status in sorted(self.statuses(now_ms).items()):
            if only is not None and symbol not in only:
                continue
            base, quote = split_symbol(symbol)
            items.append(
                {
                    "symbol": symbol,
                    "status": status,
                    "baseAsset": base,
                    "quoteAsset": quote,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "permissionSets": [["SPOT"]],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {
                    "rateLimitType": "CONNECTIONS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 300,
                },
            ],
            "exchangeFilters": [],
            "symbols": items,
        }


@dataclass
class AttemptWindow:
    """Connection attempts per IP within the last ``window`` seconds."""

    limit: int = 300
    window: float = 300.0
    _attempts: dict[str, deque[float]] = field(default_factory=dict)

    def attempt(self, ip: str, now: float) -> int:
        """Record one attempt; returns the attempts of ``ip`` in the window, this one included."""
        attempts = self._attempts.setdefault(ip, deque())
        attempts.append(now)
        while attempts[0] <= now - self.window:
            attempts.popleft()
        return len(attempts)


@dataclass(frozen=True)
class ControlRequest:
    method: str
    streams: tuple[str, ...]
    id: Any


def control_request(text: str) -> ControlRequest | str:
    """A client's request, or why it is not one (Binance answers those with an error)."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "Invalid JSON"
    if not isinstance(message, dict):
        return "Invalid request"
    method, params = message.get("method"), message.get("params", [])
    if method not in CONTROL_METHODS:
        return f"Unknown method {str(method)[:40]!r}"
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        return "Invalid request: params must be a list of stream names"
    return ControlRequest(method, tuple(p.lower() for p in params), message.get("id"))
