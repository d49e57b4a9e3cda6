"""Which symbols the feed follows: ``GET /api/v3/exchangeInfo`` (weight 20).

One item of its ``symbols`` list (fields cryptolab reads; Binance sends many more)::

    {"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT",
     "isSpotTradingAllowed":true,"permissionSets":[["SPOT","MARGIN"]]}

``status`` is ``TRADING`` for a symbol that trades now; ``BREAK``, ``HALT``, ``PRE_TRADING``...
otherwise. ``symbols=all`` follows every spot symbol that is ``TRADING`` (optionally of one
quote asset); an explicit list is checked against the whole list, so that a typo is an error
that names the close matches instead of a subscription that never delivers anything.
"""

from __future__ import annotations

import difflib
import json
import logging
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptolab.errors import ConfigError, FeedError
from cryptolab.settings import Settings

log = logging.getLogger(__name__)

EXCHANGE_INFO = "/api/v3/exchangeInfo"
EXCHANGE_INFO_WEIGHT = 20
TRADING = "TRADING"


@dataclass(frozen=True)
class Listing:
    symbol: str
    status: str
    base: str
    quote: str
    spot: bool = True

    @property
    def trading(self) -> bool:
        return self.status == TRADING and self.spot


class ExchangeUnreachable(FeedError):
    """exchangeInfo could not be fetched at all (network), as opposed to a bad answer."""


def parse_exchange_info(body: Any) -> list[Listing]:
    """The ``symbols`` of an exchangeInfo answer; items without a usable name are skipped."""
    items = body.get("symbols") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise FeedError(f"exchangeInfo answer has no 'symbols' list: {str(body)[:200]}")
    listings = []
    for item in items:
        if not isinstance(item, dict):
            continue
        symbol = item.get("symbol")
        if not isinstance(symbol, str) or not symbol.isascii() or not symbol.isalnum():
            continue
        spot = item.get("isSpotTradingAllowed")
        listings.append(
            Listing(
                symbol=symbol.upper(),
                status=str(item.get("status", "")),
                base=str(item.get("baseAsset", "")),
                quote=str(item.get("quoteAsset", "")),
                spot=spot is not False,
            )
        )
    return listings


def fetch_listings(rest_url: str, timeout: float) -> list[Listing]:
    """Every symbol of ``<rest_url>/api/v3/exchangeInfo``. Raises ExchangeUnreachable when the
    endpoint does not answer, FeedError when it answers with something unusable."""
    url = rest_url.rstrip("/") + EXCHANGE_INFO
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:200].decode("utf-8", "replace")
        raise FeedError(f"GET {url}: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ExchangeUnreachable(f"GET {url}: {exc}") from exc
    except ValueError as exc:
        raise FeedError(f"GET {url}: not JSON ({exc})") from exc
    return parse_exchange_info(body)


def trading_symbols(listings: Iterable[Listing], quote: str | None = None) -> list[str]:
    """The spot symbols trading now (of ``quote`` only, when given), sorted. Symbols in other
    states are skipped with one log line that counts them by status."""
    chosen, skipped = [], Counter[str]()
    for listing in listings:
        if quote and listing.quote.upper() != quote.upper():
            continue
        if listing.trading:
            chosen.append(listing.symbol)
        else:
            skipped[listing.status if listing.spot else "not spot"] += 1
    if skipped:
        states = ", ".join(f"{status or '?'}={n}" for status, n in sorted(skipped.items()))
        log.info("exchangeInfo: skipped %d symbols not trading (%s)", sum(skipped.values()), states)
    return sorted(set(chosen))


def check_symbols(requested: Sequence[str], listings: Sequence[Listing]) -> list[str]:
    """Fail on a requested symbol Binance does not list, naming the close matches; returns the
    requested symbols that are listed but not trading now (subscribed anyway: they resume)."""
    by_symbol = {listing.symbol: listing for listing in listings}
    unknown = [s for s in requested if s not in by_symbol]
    if unknown:
        names = sorted(by_symbol)
        hints = []
        for symbol in unknown:
            close = difflib.get_close_matches(symbol, names, n=3, cutoff=0.6)
            hints.append(
                f"{symbol} (did you mean {', '.join(close)}?)" if close else f"{symbol} (no match)"
            )
        raise ConfigError(
            f"unknown symbol(s) for Binance spot: {'; '.join(hints)}. Fix --symbols / "
            "CRYPTOLAB_SYMBOLS, or use --symbols all"
        )
    idle = [s for s in requested if not by_symbol[s].trading]
    if idle:
        states = ", ".join(f"{s}={by_symbol[s].status}" for s in idle)
        log.warning("symbols not trading now (subscribed anyway, they may resume): %s", states)
    return idle


def resolve_symbols(settings: Settings) -> list[str]:
    """The symbols to subscribe at start. ``symbols=all``: exchangeInfo's trading spot symbols
    (of ``quote_asset``); an explicit list is checked against exchangeInfo (an unknown symbol is
    a ConfigError naming close matches) when it answers, and used as it is when it cannot be
    read. Raises ExchangeUnreachable when ``all`` cannot be resolved for lack of a network."""
    timeout = settings.connect_timeout_seconds
    if settings.all_symbols:
        symbols = trading_symbols(fetch_listings(settings.binance_rest_url, timeout),
                                  settings.quote_asset)  # fmt: skip
        if not symbols:
            quote = f" quoted in {settings.quote_asset}" if settings.quote_asset else ""
            raise ConfigError(f"exchangeInfo lists no trading spot symbol{quote}")
        log.info("following every trading symbol%s: %d",
                 f" quoted in {settings.quote_asset}" if settings.quote_asset else "",
                 len(symbols))  # fmt: skip
        return symbols
    try:
        listings = fetch_listings(settings.binance_rest_url, timeout)
    except ExchangeUnreachable:
        return list(settings.symbols)  # the stream probe says so, and what happens then
    except FeedError as exc:
        log.warning("cannot check the symbols against exchangeInfo (%s); using them as given", exc)
        return list(settings.symbols)
    check_symbols(settings.symbols, listings)
    return list(settings.symbols)


def describe(settings: Settings, symbols: Sequence[str]) -> str:
    """``all 412 symbols quoted in USDT``, or the list itself (shortened past 8)."""
    if settings.all_symbols:
        quote = f" quoted in {settings.quote_asset}" if settings.quote_asset else ""
        return f"all {len(symbols)} trading symbols{quote}"
    shown = ",".join(symbols[:8])
    return shown + (f",... ({len(symbols)} symbols)" if len(symbols) > 8 else "")
