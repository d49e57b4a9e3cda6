"""What the market page shows, and what changed since the browser last got it.

The browser holds one page of the table (sorted, filtered and paged here, over every symbol:
with thousands of symbols most of them trade every few seconds, and no update format beats
"only the rows on screen"). Values are rounded to what the page displays, so a tick only sends
cells that look different: a ``Patch`` of those cells (a whole row where another symbol moved
into its place), never the whole page, unless the server no longer knows what the browser holds
(then it redraws).

What the browser holds is named by a short token kept in the page; the rows behind recent tokens
stay in a small in-process cache (:class:`Sent`). A token the cache does not know (a restarted
server, another worker) costs one full redraw, never a wrong patch.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, quote

from dash import Patch

from cryptolab.store.overview import MarketRow, MarketSnapshot
from cryptolab.symbols import QUOTE_ASSETS, quote_asset

FIELDS = ("last", "chg_1h", "chg_24h", "vol_24h", "tps", "spark", "p1h", "p24h")
"""Row fields a tick may change (``symbol``, ``name`` and ``quote`` never change)."""
SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_STEP = 3
"""Minutes per sparkline character: 20 characters for the hour."""
MAX_TEXT = 40
ROW_CELLS = 4
"""A replaced row costs about as much as this many changed cells."""
MAX_CELLS_PER_ROW = 2.0
"""A patch setting more cells than this many per row is larger than the rows themselves (a
cell costs ~70 bytes in a Patch, a row ~200 in full): then the rows are sent."""
TOKEN_CACHE = 16
_SAFE_SYMBOL = re.compile(r"[A-Z0-9]{1,32}")


def significant(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits (what the page displays)."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


@lru_cache(maxsize=8192)
def sparkline(points: tuple[float, ...], step: int = SPARK_STEP) -> str:
    """A text sparkline: one block character per ``step`` points (the last of each group).

    Cached: a symbol's points change once a minute, the page asks every second."""
    if not points:
        return ""
    values = [points[min(i + step - 1, len(points) - 1)] for i in range(0, len(points), step)]
    low, high = min(values), max(values)
    if high <= low:
        return SPARK_CHARS[3] * len(values)
    top = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[round((v - low) / (high - low) * top)] for v in values)


@lru_cache(maxsize=8192)
def chart_link(symbol: str) -> str:
    """The symbol as a markdown link to its chart (only for names the store can hold)."""
    if not _SAFE_SYMBOL.fullmatch(symbol):
        return symbol[:MAX_TEXT].replace("[", "").replace("]", "")
    return f"[{symbol}](/?symbol={quote(symbol)})"


def table_row(row: MarketRow) -> dict[str, Any]:
    """One table row, rounded to the page's display precision."""
    return {
        "symbol": chart_link(row.symbol),
        "name": row.symbol,
        "quote": _quote(row.symbol),
        "last": significant(row.last, 7),
        "chg_1h": None if row.change_1h is None else round(row.change_1h, 2),
        "chg_24h": None if row.change_24h is None else round(row.change_24h, 2),
        "vol_24h": significant(row.quote_volume_24h, 4),
        "tps": round(row.trades_per_s, 2),
        "spark": sparkline(row.spark),
        "p1h": int(row.change_1h_partial),
        "p24h": int(row.change_24h_partial),
    }


_quote = lru_cache(maxsize=8192)(quote_asset)


SORT_KEYS: dict[str, Any] = {
    "symbol": lambda r: r.symbol,
    "quote": lambda r: (_quote(r.symbol), r.symbol),
    "last": lambda r: r.last,
    "chg_1h": lambda r: r.change_1h,
    "chg_24h": lambda r: r.change_24h,
    "vol_24h": lambda r: r.quote_volume_24h,
    "tps": lambda r: r.trades_per_s,
}
DEFAULT_SORT = ("vol_24h", "desc")


def sort_order(sort_by: Any) -> tuple[str, bool]:
    """(column, descending) from the table's ``sort_by``; anything unknown -> volume, desc."""
    if isinstance(sort_by, list) and sort_by and isinstance(sort_by[0], dict):
        column, direction = sort_by[0].get("column_id"), sort_by[0].get("direction")
        if column in SORT_KEYS and direction in ("asc", "desc"):
            return str(column), direction == "desc"
    return DEFAULT_SORT[0], True


def page_rows(
    snapshot: MarketSnapshot, filters: Filters, sort_by: Any, page: Any, size: int
) -> tuple[list[dict[str, Any]], int, list[MarketRow]]:
    """The table rows of one page (filtered, sorted; missing values last), the page count, and
    every row that passed the filter."""
    mine = [r for r in snapshot.rows if filters.matches(r.symbol)]
    column, descending = sort_order(sort_by)
    key = SORT_KEYS[column]
    known = [r for r in mine if key(r) is not None]
    ordered = sorted(known, key=lambda r: (key(r), r.symbol), reverse=descending)
    ordered += sorted((r for r in mine if key(r) is None), key=lambda r: r.symbol)
    pages = max(1, -(-len(ordered) // size))
    index = page if isinstance(page, int) and 0 <= page < pages else 0
    chosen = ordered[index * size : (index + 1) * size]
    return [table_row(r) for r in chosen], pages, mine


def token_of(rows: Sequence[dict[str, Any]]) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for row in rows:
        digest.update(repr(sorted(row.items())).encode())
    return digest.hexdigest()


class Sent:
    """The rows sent to browsers recently, by token (a bounded, thread-safe cache)."""

    def __init__(self, size: int = TOKEN_CACHE) -> None:
        self.size = size
        self._rows: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, rows: list[dict[str, Any]]) -> str:
        token = token_of(rows)
        with self._lock:
            self._rows[token] = rows
            self._rows.move_to_end(token)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
        return token

    def rows(self, token: Any) -> list[dict[str, Any]] | None:
        if not isinstance(token, str):
            return None
        with self._lock:
            return self._rows.get(token[:32])


@dataclass(frozen=True)
class TableUpdate:
    """``data`` is a full row list or a ``Patch``; ``cells`` how many cells a patch sets."""

    data: Any
    token: str
    full: bool
    cells: int


def table_update(sent: Sent, token: Any, rows: list[dict[str, Any]]) -> TableUpdate | None:
    """What to send for ``rows`` to a browser holding ``token``'s rows: a Patch of the cells
    that differ (the whole row where another symbol took the place); the full list when the
    token is unknown, the length differs or the list is smaller than the patch; None when
    nothing differs."""
    shown = sent.rows(token)
    if shown is None or len(shown) != len(rows):
        return TableUpdate(rows, sent.remember(rows), True, 0)
    patch, cells, replaced = Patch(), 0, 0
    for index, (old, new) in enumerate(zip(shown, rows, strict=True)):
        if old["name"] != new["name"]:
            patch[index] = new
            replaced += 1
            continue
        for field in FIELDS:
            if old[field] != new[field]:
                patch[index][field] = new[field]
                cells += 1
    if not cells and not replaced:
        return None
    if cells + ROW_CELLS * replaced > len(rows) * MAX_CELLS_PER_ROW:
        return TableUpdate(rows, sent.remember(rows), True, cells)
    return TableUpdate(patch, sent.remember(rows), False, cells + ROW_CELLS * replaced)


@dataclass(frozen=True)
class Filters:
    """What the user narrowed the table to: a quote asset ("" = all) and a text."""

    quote: str = ""
    text: str = ""

    def matches(self, symbol: str) -> bool:
        if self.quote and _quote(symbol) != self.quote:
            return False
        return not self.text or self.text in symbol


def clean_filters(quote_value: Any, text: Any) -> Filters:
    """Filters from user input: an unknown quote asset means all, the text keeps letters and
    digits only (upper-cased, at most MAX_TEXT)."""
    known = (*QUOTE_ASSETS, "other")
    chosen = quote_value if isinstance(quote_value, str) and quote_value in known else ""
    raw = text if isinstance(text, str) else ""
    cleaned = re.sub(r"[^A-Za-z0-9]", "", raw)[:MAX_TEXT].upper()
    return Filters(chosen, cleaned)


def url_filters(search: Any) -> Filters:
    """``?quote=USDT&q=btc`` -> Filters; anything else in the URL is ignored."""
    if not isinstance(search, str):
        return Filters()
    try:
        params = parse_qs(search.lstrip("?"), max_num_fields=20)
    except ValueError:  # more fields than any link of ours has: not ours, ignore it
        return Filters()
    return clean_filters(params.get("quote", [""])[0], params.get("q", [""])[0])


def quote_options(snapshot: MarketSnapshot) -> list[dict[str, str]]:
    """The quote assets present, most symbols first."""
    counts: dict[str, int] = {}
    for row in snapshot.rows:
        quote = _quote(row.symbol)
        counts[quote] = counts.get(quote, 0) + 1
    ordered = sorted(counts, key=lambda q: (-counts[q], q))
    return [{"label": f"{q} ({counts[q]})", "value": q} for q in ordered]
