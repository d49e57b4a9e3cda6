"""What a symbol's name says: its quote asset (``BTCUSDT`` -> ``USDT``, ``ETHBTC`` -> ``BTC``).

Binance's ``exchangeInfo`` states each symbol's quote asset; the store keeps only names, so the
overview and the notebooks read it from the name: the longest known quote asset the name ends
with, leaving a base of at least two characters.
"""

from __future__ import annotations

QUOTE_ASSETS = (
    "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "USDP", "DAI", "USD1", "XUSD", "BFUSD", "EURI",
    "BTC", "ETH", "BNB", "SOL", "XRP", "TRX", "DOGE", "DOT",
    "EUR", "TRY", "BRL", "JPY", "GBP", "AUD", "PLN", "ARS", "UAH", "ZAR", "IDR", "MXN", "COP",
    "CZK", "RON", "RUB", "NGN",
)  # fmt: skip
"""Quote assets of Binance spot symbols, stablecoins first."""
OTHER = "other"
_BY_LENGTH = sorted(QUOTE_ASSETS, key=len, reverse=True)


def quote_asset(symbol: str) -> str:
    """The quote asset ``symbol`` ends with, or ``"other"``."""
    for quote in _BY_LENGTH:
        if symbol.endswith(quote) and len(symbol) - len(quote) >= 2:
            return quote
    return OTHER
