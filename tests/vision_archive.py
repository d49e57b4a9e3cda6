"""A local data.binance.vision for the history tests.

:func:`build_archive` generates spot trades (BTCUSDT-like precision: 2-decimal prices, 5-decimal
quantities; some trades share a millisecond, or a microsecond, with the one before) and lays
them out exactly as Binance publishes them: daily and monthly trades zips, daily klines zips
per interval, each with ``<file>.CHECKSUM`` (``<sha256>  <name>``); 2024 files in milliseconds,
2025 files in microseconds. The klines come from tests/reference.py, not from cryptolab.
:class:`VisionServer` serves the tree over HTTP with ``Range`` support and logs the requests.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd

from tests.reference import reference_klines

DAY_MS = 86_400_000
INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "1d": DAY_MS}
FIRST_ID = {"BTCUSDT": 4_100_000_000, "ETHUSDT": 2_000_000_000}
START_PRICE = {"BTCUSDT": Decimal("93000.00"), "ETHUSDT": Decimal("3400.00")}


def day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def micros_file(day: date) -> bool:
    """Binance's spot files are in microseconds from 2025-01-01 on."""
    return day >= date(2025, 1, 1)


@dataclass
class Archive:
    """What was generated: the tree, every trade (``trade_time`` in µs), what is broken."""

    root: Path
    trades: pd.DataFrame
    missing: set[str] = field(default_factory=set)  # file names not published (404)
    broken: dict[str, str] = field(default_factory=dict)  # file name -> "checksum"/"truncated"

    def of(self, symbol: str, days: list[date]) -> pd.DataFrame:
        mine = self.trades[(self.trades.symbol == symbol) & self.trades.day.isin(days)]
        return mine.reset_index(drop=True)


def _day_trades(symbol: str, day: date, count: int, first_id: int, price: Decimal,
                rng: random.Random) -> list[tuple[Any, ...]]:  # fmt: skip
    """(symbol, id, price, qty, time µs, maker, day) in id order; every 7th trade shares the
    time of the one before (a ms in ms files, a µs in µs files), the first minute has trades."""
    unit = 1 if micros_file(day) else 1000
    start_us = day_ms(day) * 1000
    offsets = sorted(rng.randrange(0, DAY_MS * 1000) // unit * unit for _ in range(count))
    offsets[:3] = sorted(rng.randrange(0, 50_000_000) // unit * unit for _ in range(3))
    offsets.sort()
    rows: list[tuple[Any, ...]] = []
    for n, offset in enumerate(offsets):
        if n and n % 7 == 0:
            offset = rows[-1][4] - start_us  # the same instant as the trade before
        price = max(Decimal("0.01"), price + Decimal(rng.randint(-300, 300)) / 100)
        qty = Decimal(rng.randint(1, 250_000)) / 100_000
        rows.append((symbol, first_id + n, price, qty, start_us + offset, rng.random() < 0.5, day))
    return rows


def _csv(rows: list[tuple[Any, ...]], micros: bool) -> str:
    lines = []
    for _, trade_id, price, qty, time_us, maker, _ in rows:
        time = time_us if micros else time_us // 1000
        lines.append(f"{trade_id},{price:.8f},{qty:.8f},{price * qty:.8f},{time},{maker},True")
    return "\n".join(lines) + "\n"


def _zip(text: str, member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    return buffer.getvalue()


def publish(root: Path, path: str, data: bytes, checksum_of: bytes | None = None) -> None:
    """Write ``path`` and its ``.CHECKSUM`` (of ``checksum_of``, default: of ``data``)."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    digest = hashlib.sha256(data if checksum_of is None else checksum_of).hexdigest()
    (root / f"{path}.CHECKSUM").write_text(f"{digest}  {target.name}\n")


def _klines_csv(klines: list[dict[str, Any]], interval_ms: int, micros: bool) -> str:
    unit = 1000 if micros else 1
    lines = []
    for k in klines:
        opened = k["open_time"] * unit
        closed = opened + interval_ms * unit - 1
        prices = ",".join(f"{k[f]:.8f}" for f in ("open", "high", "low", "close", "volume"))
        lines.append(
            f"{opened},{prices},{closed},{k['quote_volume']:.8f},{k['trades']},"
            f"{k['buy_volume']:.8f},{k['buy_quote_volume']:.8f},0"
        )
    return "\n".join(lines) + "\n"


def build_archive(
    root: Path,
    days: dict[date, int],
    symbols: tuple[str, ...] = ("BTCUSDT",),
    monthly: tuple[str, ...] = (),
    klines_days: tuple[date, ...] = (),
    missing: tuple[date, ...] = (),
    wrong_checksum: tuple[date, ...] = (),
    truncated: tuple[date, ...] = (),
    seed: int = 16,
) -> Archive:
    """Trades of ``days`` (day -> trades per symbol) for ``symbols``; monthly files for the
    months in ``monthly`` (``2024-11``); klines of every interval for ``klines_days``; daily
    trades files not published for ``missing``, published with a wrong checksum for
    ``wrong_checksum``, cut in half (with the checksum of the cut file) for ``truncated``."""
    rng = random.Random(seed)
    archive = Archive(root, pd.DataFrame())
    rows: list[tuple[Any, ...]] = []
    for symbol in symbols:
        next_id, price = FIRST_ID[symbol], START_PRICE[symbol]
        close = price
        for day in sorted(days):
            mine = _day_trades(symbol, day, days[day], next_id, price, rng)
            next_id += len(mine)
            price = mine[-1][2]
            rows += mine
            name = f"{symbol}-trades-{day}"
            path = f"data/spot/daily/trades/{symbol}/{name}.zip"
            data = _zip(_csv(mine, micros_file(day)), f"{name}.csv")
            if day in missing:
                archive.missing.add(f"{name}.zip")
            elif day in wrong_checksum:
                publish(root, path, data, checksum_of=data + b"x")
                archive.broken[f"{name}.zip"] = "checksum"
            elif day in truncated:
                publish(root, path, data[: len(data) // 2])
                archive.broken[f"{name}.zip"] = "truncated"
            else:
                publish(root, path, data)
            if day in klines_days:
                close = _publish_klines(root, symbol, day, mine, close)
            else:
                close = mine[-1][2]
        for month in monthly:
            mine = [r for r in rows if r[0] == symbol and f"{r[6]:%Y-%m}" == month]
            name = f"{symbol}-trades-{month}"
            text = "".join(_csv([r], micros_file(r[6])) for r in mine)
            publish(
                root, f"data/spot/monthly/trades/{symbol}/{name}.zip", _zip(text, f"{name}.csv")
            )
    columns = ["symbol", "trade_id", "price", "qty", "trade_time", "m", "day"]
    archive.trades = pd.DataFrame(rows, columns=columns)
    return archive


def _publish_klines(
    root: Path, symbol: str, day: date, rows: list[tuple[Any, ...]], close: Decimal
) -> Decimal:
    columns = ["symbol", "trade_id", "price", "qty", "trade_time", "m", "day"]
    frame = pd.DataFrame(rows, columns=columns)
    start = day_ms(day)
    for interval, width in INTERVAL_MS.items():
        klines = reference_klines(frame, width, start, start + DAY_MS, close)
        name = f"{symbol}-{interval}-{day}"
        text = _klines_csv(klines, width, micros_file(day))
        publish(
            root,
            f"data/spot/daily/klines/{symbol}/{interval}/{name}.zip",
            _zip(text, f"{name}.csv"),
        )
    return Decimal(rows[-1][2])


def tamper_kline(root: Path, symbol: str, interval: str, day: date, index: int) -> int:
    """Raise the close of kline ``index`` (or the next with trades) of a published klines file
    by one tick (0.01), with a
    matching checksum (as if Binance's number differed); returns its open time in ms."""
    name = f"{symbol}-{interval}-{day}"
    path = f"data/spot/daily/klines/{symbol}/{interval}/{name}.zip"
    with zipfile.ZipFile(root / path) as archive:
        lines = archive.read(f"{name}.csv").decode().splitlines()
    while lines[index].split(",")[8] == "0":  # a kline with trades (an empty one equals none)
        index += 1
    cells = lines[index].split(",")
    cells[4] = f"{Decimal(cells[4]) + Decimal('0.01'):.8f}"
    lines[index] = ",".join(cells)
    publish(root, path, _zip("\n".join(lines) + "\n", f"{name}.csv"))
    opened = int(cells[0])
    return opened // 1000 if opened >= 10**14 else opened


class _Handler(BaseHTTPRequestHandler):
    server: VisionServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        target = (self.server.root / self.path.lstrip("/")).resolve()
        if not target.is_file() or self.server.root not in target.parents:
            self.send_error(404)
            return
        data = target.read_bytes()
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and ranged[6:-1].isdigit() and ranged.endswith("-"):
            offset = int(ranged[6:-1])
            if offset >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {offset}-{len(data) - 1}/{len(data)}")
            data = data[offset:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class VisionServer(ThreadingHTTPServer):
    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root.resolve()
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(root: Path) -> Iterator[VisionServer]:
    server = VisionServer(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def utc_days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
