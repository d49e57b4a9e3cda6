"""``cryptolab history load``: Binance's published spot trades into the store, with candles.

For each symbol and day of the range (both ends inclusive) the daily file
``data/spot/daily/trades/SYM/SYM-trades-YYYY-MM-DD.zip`` is fetched and verified
(:mod:`.download`), or the monthly file when a whole, finished month is asked (its days one by
one when the month is not published). Each verified file is loaded all-or-nothing into
``trades`` (:mod:`.archive_load`: ClickHouse reads the CSV itself), then the 10 s candles of
its time range are derived by :func:`cryptolab.store.reconcile.reconcile`, the same candle
definition the stream is reconciled with. Files already in the store (same name and hash) are
skipped, downloads are cached and resumed, so an interrupted run continues where it stopped;
``trades`` deduplicates by (symbol, trade_id), so overlapping a live run changes nothing.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from cryptolab.batch.archive_load import LoadedFile, load_file, loaded_files
from cryptolab.batch.download import Archive, Fetched
from cryptolab.errors import HistoryError
from cryptolab.feeds.tapes.vision import trades_file
from cryptolab.model import WINDOW_SECONDS
from cryptolab.store.client import Store
from cryptolab.store.reconcile import reconcile
from cryptolab.store.schema import TRADES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wanted:
    """One file to fetch: a day (``2025-01-31``) or a month (``2025-01``) of ``symbol``;
    ``days`` are what to fetch instead when a month is not published."""

    symbol: str
    period: str
    days: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return trades_file(self.symbol, self.period)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def plan(symbols: Sequence[str], start: date, end: date, today: date) -> list[Wanted]:
    """The files covering ``start .. end`` (inclusive): monthly where a whole month before
    ``today``'s is asked (Binance publishes a month's file after it ends), else daily."""
    if start > end:
        raise HistoryError(
            f"--start {start} is after --end {end}: give the first day, then the last "
            "(both inclusive)"
        )
    wanted: list[Wanted] = []
    month = date(start.year, start.month, 1)
    while month <= end:
        last = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
        first_day, last_day = max(month, start), min(last, end)
        days = tuple(
            str(first_day + timedelta(days=n)) for n in range((last_day - first_day).days + 1)
        )
        whole = first_day == month and last_day == last and last < today.replace(day=1)
        for symbol in symbols:
            if whole:
                wanted.append(Wanted(symbol, f"{month:%Y-%m}", days))
            else:
                wanted += [Wanted(symbol, day) for day in days]
        month = last + timedelta(days=1)
    return wanted


class Progress(Protocol):
    """What a load reports as it goes (the CLI draws a progress bar or writes log lines)."""

    def begin(self, files: int) -> None: ...
    def add_files(self, files: int) -> None: ...
    def downloaded(self, size: int) -> None: ...
    def file_done(self, name: str, status: str, trades: int) -> None: ...
    def end(self) -> None: ...


class LogProgress:
    """Plain log lines, one per file (the default, and the CLI's when not on a terminal)."""

    def __init__(self) -> None:
        self.files = self.done = self.trades = 0
        self.started = time.monotonic()

    def begin(self, files: int) -> None:
        self.files, self.started = files, time.monotonic()

    def add_files(self, files: int) -> None:
        self.files += files

    def downloaded(self, size: int) -> None:
        pass

    def file_done(self, name: str, status: str, trades: int) -> None:
        self.done += 1
        self.trades += trades
        rate = self.trades / max(time.monotonic() - self.started, 1e-9)
        log.info(
            "history file %d/%d %s %s trades=%d (%.0f trades/s so far)",
            self.done, self.files, name, status, trades, rate,
        )  # fmt: skip

    def end(self) -> None:
        pass


@dataclass
class HistoryReport:
    """What a load did; ``ok`` only when nothing was missing or refused."""

    symbols: tuple[str, ...]
    start: date
    end: date
    loaded: list[LoadedFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the store
    missing: list[tuple[str, str]] = field(default_factory=list)  # (symbol, file name)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    downloaded_bytes: int = 0
    candle_windows: int = 0
    seconds: float = 0.0

    @property
    def trades(self) -> int:
        return sum(f.trades for f in self.loaded)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.refused

    def describe(self) -> str:
        rate = self.trades / self.seconds if self.seconds else 0.0
        lines = [
            f"history {','.join(self.symbols)} {self.start} .. {self.end}: "
            f"{len(self.loaded)} files loaded ({self.trades:,} trades, {rate:,.0f} trades/s), "
            f"{len(self.skipped)} already in the store, {len(self.missing)} not published, "
            f"{len(self.refused)} refused; {self.candle_windows:,} candle windows written "
            f"in {self.seconds:.1f} s"
        ]
        for symbol in self.symbols:
            names = [n for s, n in self.missing if s == symbol]
            if (
                names
                and not any(f.symbol == symbol for f in self.loaded)
                and not any(n.startswith(f"{symbol}-") for n in self.skipped)
            ):
                lines.append(
                    f"missing: no trades published for {symbol} from {self.start} to "
                    f"{self.end} ({len(names)} files 404): is the symbol right?"
                )
            else:
                lines += [f"missing: {name} (not published)" for name in names]
        lines += [f"refused: {name}: {reason}" for name, reason in self.refused]
        return "\n".join(lines)


def _drop_leftovers(store: Store) -> None:
    """Scratch tables of a load that was killed (a clean stop drops its own)."""
    rows = store.query_rows(
        "SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, "
        "{prefix:String})",
        {"db": store.database, "prefix": f"{TRADES}__load_"},
    )
    for (name,) in rows:
        store.command(f"DROP TABLE IF EXISTS {store.table(str(name))}")


def load_history(
    store: Store,
    archive: Archive,
    symbols: Sequence[str],
    start: date,
    end: date,
    today: date | None = None,
    progress: Progress | None = None,
) -> HistoryReport:
    """Fetch, verify and load ``symbols``' published trades of ``start .. end`` (inclusive)
    into ``store``, with their candles. Raises HistoryError when the archive cannot be reached
    or the cache disk is full (files loaded before stay, complete)."""
    symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
    queue = plan(symbols, start, end, today or datetime.now(UTC).date())
    if not store.embedded:
        raise HistoryError(
            "history load writes to the embedded store (ClickHouse reads the downloaded files "
            "from this machine's disk); unset CRYPTOLAB_CLICKHOUSE_URL to use it, or run the "
            "load on the ClickHouse server's host with an embedded store and copy the data"
        )
    progress = progress or LogProgress()
    report = HistoryReport(symbols, start, end)
    started = time.perf_counter()
    _drop_leftovers(store)
    known = {symbol: loaded_files(store, symbol) for symbol in symbols}

    def count_bytes(size: int) -> None:
        report.downloaded_bytes += size
        progress.downloaded(size)

    archive.on_bytes = count_bytes
    progress.begin(len(queue))
    try:
        while queue:
            wanted = queue.pop(0)
            fetched = archive.fetch(wanted.path)
            if fetched.status == "missing" and wanted.days:
                log.info("monthly file not published, fetching its days file=%s", wanted.name)
                days = [Wanted(wanted.symbol, day) for day in wanted.days]
                queue[:0] = days
                progress.add_files(len(days) - 1)
                continue
            _take(store, wanted, fetched, known[wanted.symbol], report, progress)
    finally:
        report.seconds = time.perf_counter() - started
        progress.end()
    log.info("%s", report.describe().splitlines()[0])
    return report


def _take(
    store: Store,
    wanted: Wanted,
    fetched: Fetched,
    known: dict[str, str],
    report: HistoryReport,
    progress: Progress,
) -> None:
    """Load one fetched file (unless it is missing, refused or already in the store)."""
    if fetched.status == "missing":
        report.missing.append((wanted.symbol, wanted.name))
        progress.file_done(wanted.name, "not published", 0)
        return
    if fetched.path is None:
        report.refused.append((wanted.name, fetched.reason))
        progress.file_done(wanted.name, "refused", 0)
        return
    if known.get(wanted.name) == fetched.sha256:
        report.skipped.append(wanted.name)
        progress.file_done(wanted.name, "already in the store", 0)
        return
    try:
        loaded = load_file(store, fetched.path, wanted.symbol, fetched.sha256)
    except HistoryError as exc:
        report.refused.append((wanted.name, str(exc)))
        progress.file_done(wanted.name, "refused", 0)
        return
    if loaded.trades:
        window = timedelta(seconds=WINDOW_SECONDS)
        candles = reconcile(
            store, loaded.first_trade_time, loaded.last_trade_time + window, details=False,
            symbols=[wanted.symbol],
        )  # fmt: skip
        report.candle_windows += candles.windows_changed
    known[wanted.name] = fetched.sha256
    report.loaded.append(loaded)
    progress.file_done(wanted.name, "loaded", loaded.trades)
