"""``cryptolab history load`` and ``cryptolab verify klines``: parse, call the library, print."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptolab.errors import CryptolabError
from cryptolab.settings import Settings, load_settings


def day(text: str) -> date:
    """A ``YYYY-MM-DD`` date (argparse type)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date like 2025-01-31, got {text[:40]!r}"
        ) from None


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return load_settings(data_dir=getattr(args, "data_dir", None), **extra)


class RichProgress:
    """A progress bar on a terminal: files (with ETA), bytes downloaded, trades and their rate."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.bytes = Progress(
            TextColumn("downloaded"), DownloadColumn(), TransferSpeedColumn(), transient=False
        )
        self.files = self.bar.add_task("files", total=0, detail="")
        self.download = self.bytes.add_task("bytes", total=None)
        self.trades = 0
        self.started = time.monotonic()

    def begin(self, files: int) -> None:
        from rich.console import Group
        from rich.live import Live

        self.bar.update(self.files, total=files)
        self.live = Live(Group(self.bar, self.bytes), refresh_per_second=4, transient=False)
        self.live.start()
        self.started = time.monotonic()

    def add_files(self, files: int) -> None:
        total = self.bar.tasks[0].total or 0
        self.bar.update(self.files, total=total + files)

    def downloaded(self, size: int) -> None:
        self.bytes.advance(self.download, size)

    def file_done(self, name: str, status: str, trades: int) -> None:
        self.trades += trades
        rate = self.trades / max(time.monotonic() - self.started, 1e-9)
        self.bar.update(
            self.files, advance=1, detail=f"{self.trades:,} trades {rate:,.0f}/s  {name} {status}"
        )

    def end(self) -> None:
        live = getattr(self, "live", None)
        if live is not None:
            live.stop()


def cmd_history_load(args: argparse.Namespace) -> int:
    from cryptolab.batch.download import Archive
    from cryptolab.batch.history import LogProgress, load_history
    from cryptolab.store import open_store

    settings = _settings(args, symbols=args.symbols)
    if args.start > args.end:
        raise CryptolabError(
            f"--start {args.start} is after --end {args.end}: give the first day, then the "
            "last (both inclusive)"
        )
    archive = Archive(args.base_url or settings.binance_data_url, settings.cache_dir / "binance")
    store = open_store(settings)
    progress = RichProgress() if sys.stderr.isatty() else LogProgress()
    try:
        report = load_history(
            store, archive, settings.symbols, args.start, args.end, progress=progress
        )
    finally:
        store.close()
    print(report.describe(), flush=True)
    return 0 if report.ok else 1


def _range(start: date | datetime, end: date | datetime) -> tuple[datetime, datetime]:
    """Dates are whole days (``--end`` inclusive); times are exact (``--end`` exclusive)."""
    low = start if isinstance(start, datetime) else datetime(*start.timetuple()[:3], tzinfo=UTC)
    if isinstance(end, datetime):
        return low, end
    return low, datetime(*end.timetuple()[:3], tzinfo=UTC) + timedelta(days=1)


def cmd_verify_klines(args: argparse.Namespace) -> int:
    from cryptolab.batch.download import Archive
    from cryptolab.batch.klines import verify_klines
    from cryptolab.cli.commands import _symbol
    from cryptolab.store import open_store

    settings = _settings(args)
    if args.rest and args.base_url:
        raise CryptolabError("--rest and --base-url do not go together: pick one source")
    start, end = _range(args.start, args.end)
    archive = None
    if not args.rest:
        base = args.base_url or settings.binance_data_url
        archive = Archive(base, settings.cache_dir / "binance")
    store = open_store(settings)
    try:
        report = verify_klines(
            store,
            _symbol(args.symbol),
            args.interval,
            start,
            end,
            archive=archive,
            rest_url=settings.binance_rest_url if args.rest else None,
        )
    finally:
        store.close()
    print(report.describe(), flush=True)
    return 0 if report.ok else 1


def add_parsers(sub: Any) -> None:
    """``history load`` and ``verify klines`` under the main parser's subcommands."""
    from cryptolab.feeds.tapes.vision import KLINE_INTERVALS

    history = sub.add_parser("history", help="Binance's published trades (data.binance.vision)")
    hsub = history.add_subparsers(dest="history_command", required=True)
    load = hsub.add_parser(
        "load", help="download, verify and load published trades, with their candles"
    )
    load.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    load.add_argument("--start", type=day, required=True, help="first day, e.g. 2025-01-01")
    load.add_argument("--end", type=day, required=True, help="last day (inclusive)")
    load.add_argument(
        "--base-url", help="archive address (default CRYPTOLAB_BINANCE_DATA_URL, Binance's)"
    )
    load.set_defaults(func=cmd_history_load)

    verify = sub.add_parser("verify", help="check cryptolab's candles against Binance's numbers")
    vsub = verify.add_subparsers(dest="verify_command", required=True)
    klines = vsub.add_parser("klines", help="Binance's klines vs our candles, field by field")
    klines.add_argument("--symbol", required=True)
    klines.add_argument("--interval", choices=KLINE_INTERVALS, default="1m")
    klines.add_argument("--start", type=_day_or_time, required=True, help="a day or an ISO time")
    klines.add_argument(
        "--end", type=_day_or_time, required=True, help="a day (inclusive) or an ISO time"
    )
    source = klines.add_mutually_exclusive_group()
    source.add_argument("--base-url", help="archive address (default: the archive)")
    source.add_argument(
        "--rest", action="store_true", help="REST /api/v3/klines (CRYPTOLAB_BINANCE_REST_URL)"
    )
    klines.set_defaults(func=cmd_verify_klines)


def _day_or_time(text: str) -> date | datetime:
    from cryptolab.times import parse_utc

    if len(text.strip()) == 10:
        return day(text)
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
