"""``cryptolab verify klines``: Binance's own klines against cryptolab's candles, field by field.

Binance's klines come from its archive (daily files ``data/spot/daily/klines/SYM/1m/
SYM-1m-YYYY-MM-DD.zip``, verified like the trades files) or from REST ``/api/v3/klines`` (recent
data). Rows are the same in both::

    1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,8.21827000,
    1735689659999999,769060.55565930,2728,3.92117000,366969.61784820,0

(open time, open, high, low, close, volume, close time, quote volume, trades, taker-buy
volume, taker-buy quote volume, ignore; times in µs in 2025+ spot files, ms elsewhere). Each is
compared exactly (as decimals) with the candle of the same interval and open time: open, high,
low, close, volume, quote volume, trade count and taker-buy volume. Binance also publishes
klines for intervals without a trade (volume 0, every price the previous close): such a kline
equals an absent candle, as does an interval neither side has.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from cryptolab.batch.download import Archive
from cryptolab.errors import HistoryError
from cryptolab.feeds.tapes.vision import KLINE_INTERVALS, is_header, klines_file
from cryptolab.model import MICROS_FROM
from cryptolab.store import queries
from cryptolab.store.client import Store
from cryptolab.times import EPOCH, epoch_ms, iso_z

log = logging.getLogger(__name__)

FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trades", "buy_volume")
"""Compared fields, by cryptolab's candle names."""
_COLUMN = {"quote_volume": 7, "trades": 8, "buy_volume": 9}
KLINES_PATH = "/api/v3/klines"
REST_LIMIT = 1000


@dataclass(frozen=True)
class Kline:
    open_time: int  # ms since the epoch
    values: dict[str, Decimal]  # FIELDS -> value

    @property
    def empty(self) -> bool:
        return self.values["trades"] == 0 and self.values["volume"] == 0


def parse_kline(row: Sequence[Any]) -> Kline:
    """An archive CSV row (strings) or a REST row (numbers and strings) -> Kline."""
    try:
        opened = int(row[0])
        names = ("open", "high", "low", "close", "volume")
        values = {name: Decimal(str(row[i + 1])) for i, name in enumerate(names)}
        values.update({name: Decimal(str(row[i])) for name, i in _COLUMN.items()})
    except (IndexError, ValueError, InvalidOperation) as exc:
        raise HistoryError(f"not a kline row: {list(row)[:12]} ({exc})") from None
    return Kline(opened // 1000 if opened >= MICROS_FROM else opened, values)


@dataclass(frozen=True)
class Mismatch:
    open_time: int
    fields: tuple[tuple[str, str, str], ...]  # (field, Binance's value, ours)

    def describe(self) -> str:
        when = iso_z(EPOCH + timedelta(milliseconds=self.open_time))
        return f"{when} " + "; ".join(f"{f}: binance {b} ours {o}" for f, b, o in self.fields)


@dataclass
class KlineReport:
    symbol: str
    interval: str
    source: str
    compared: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    """Per compared kline: ``open_time`` (ms) and, per field, Binance's value minus ours (0
    when equal; None where one side has no kline or candle)."""

    @property
    def equal(self) -> int:
        return self.compared - len(self.mismatches)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.missing_files and self.compared > 0

    def describe(self) -> str:
        lines = [m.describe() for m in self.mismatches]
        lines += [f"missing: {name} (not published)" for name in self.missing_files]
        lines.append(f"{self.equal}/{self.compared} klines equal")
        return "\n".join(lines)


def _text(value: Decimal | int) -> str:
    return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)


def compare(klines: Iterable[Kline], candles: Any, report: KlineReport) -> KlineReport:
    """Binance's ``klines`` against ``candles`` (:func:`cryptolab.store.queries.candles` of the
    same interval and range), one Mismatch per kline that differs."""
    theirs = {k.open_time: k for k in klines}
    ours: dict[int, dict[str, Decimal]] = {}
    for row in candles.itertuples(index=False):
        opened = epoch_ms(row.window_start.to_pydatetime())
        ours[opened] = {name: Decimal(str(getattr(row, name))) for name in FIELDS}
    for opened in sorted(set(theirs) | set(ours)):
        kline, candle = theirs.get(opened), ours.get(opened)
        if candle is None:
            if kline is not None and kline.empty:
                report.compared += 1  # no trade, no candle: equal
                report.differences.append({"open_time": opened, **dict.fromkeys(FIELDS, 0)})
                continue
            assert kline is not None
            diffs = [("trades", _text(kline.values["trades"]), "no candle")]
        elif kline is None:
            diffs = [("kline", "none", f"candle with {_text(candle['trades'])} trades")]
        else:
            diffs = [
                (name, _text(kline.values[name]), _text(candle[name]))
                for name in FIELDS
                if kline.values[name] != candle[name]
            ]
        report.compared += 1
        report.differences.append(_difference(opened, kline, candle))
        if diffs:
            report.mismatches.append(Mismatch(opened, tuple(diffs)))
    return report


def _difference(
    opened: int, kline: Kline | None, candle: dict[str, Decimal] | None
) -> dict[str, Any]:
    if kline is None or candle is None:
        return {"open_time": opened, **dict.fromkeys(FIELDS)}
    return {"open_time": opened, **{name: kline.values[name] - candle[name] for name in FIELDS}}


def days_of(start: datetime, end: datetime) -> list[date]:
    """The UTC days that ``start <= t < end`` touches."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def archive_klines(
    archive: Archive, symbol: str, interval: str, start: datetime, end: datetime
) -> tuple[list[Kline], list[str]]:
    """Binance's klines of ``start <= open time < end`` from its archive, and the names of the
    daily files that are not published."""
    klines: list[Kline] = []
    missing: list[str] = []
    for day in days_of(start, end):
        fetched = archive.fetch(klines_file(symbol, interval, str(day)))
        if fetched.path is None:
            if fetched.status == "missing":
                missing.append(fetched.name)
                continue
            raise HistoryError(f"refused {fetched.name}: {fetched.reason}")
        klines += _read_zip(fetched.path)
    low, high = epoch_ms(start), epoch_ms(end)
    return [k for k in klines if low <= k.open_time < high], missing


def _read_zip(path: Any) -> list[Kline]:
    try:
        with zipfile.ZipFile(path) as archive:
            member = next(n for n in archive.namelist() if n.lower().endswith(".csv"))
            text = archive.read(member).decode("utf-8")
    except (zipfile.BadZipFile, StopIteration, UnicodeDecodeError) as exc:
        raise HistoryError(f"{path.name} is not a klines zip with a CSV inside ({exc})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and is_header(lines[0]):
        lines = lines[1:]
    return [parse_kline(line.split(",")) for line in lines]


def rest_klines(
    rest_url: str, symbol: str, interval: str, start: datetime, end: datetime
) -> list[Kline]:
    """Binance's klines of ``start <= open time < end`` from REST ``/api/v3/klines``."""
    klines: list[Kline] = []
    cursor, stop = epoch_ms(start), epoch_ms(end) - 1
    while cursor <= stop:
        query = urlencode(
            {"symbol": symbol, "interval": interval, "startTime": cursor, "endTime": stop,
             "limit": REST_LIMIT}
        )  # fmt: skip
        url = f"{rest_url.rstrip('/')}{KLINES_PATH}?{query}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                rows = json.load(response)
        except urllib.error.HTTPError as exc:
            body = exc.read()[:200].decode("utf-8", "replace")
            raise HistoryError(f"GET {url}: HTTP {exc.code} {body}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise HistoryError(
                f"cannot read klines from {rest_url} ({getattr(exc, 'reason', exc)}): check "
                "CRYPTOLAB_BINANCE_REST_URL and the network"
            ) from None
        page = [parse_kline(row) for row in rows]
        klines += page
        if len(page) < REST_LIMIT:
            break
        cursor = page[-1].open_time + 1
    return klines


def verify_klines(
    store: Store,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    archive: Archive | None = None,
    rest_url: str | None = None,
) -> KlineReport:
    """Compare Binance's ``interval`` klines of ``start <= open time < end`` (from ``archive``,
    or REST at ``rest_url``) with the store's candles."""
    if interval not in KLINE_INTERVALS:
        raise HistoryError(
            f"unknown interval {interval!r} (--interval); use one of {', '.join(KLINE_INTERVALS)}"
        )
    if start >= end:
        raise HistoryError(f"--start {iso_z(start)} must be before --end {iso_z(end)}")
    if (archive is None) == (rest_url is None):
        raise HistoryError("compare against the archive or REST, one of them")
    if archive is not None:
        klines, missing = archive_klines(archive, symbol, interval, start, end)
        report = KlineReport(symbol, interval, archive.base_url, missing_files=missing)
    else:
        assert rest_url is not None
        klines = rest_klines(rest_url, symbol, interval, start, end)
        report = KlineReport(symbol, interval, f"{rest_url}{KLINES_PATH}")
    candles = queries.candles(store, symbol, interval, start, end)
    compare(klines, candles, report)
    log.info(
        "verified klines symbol=%s interval=%s compared=%d mismatches=%d",
        symbol, interval, report.compared, len(report.mismatches),
    )  # fmt: skip
    return report


def utc_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
