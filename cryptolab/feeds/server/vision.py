"""A local stand-in for data.binance.vision, made from a tape: the tape's trades as published
spot trades files (one zip per symbol and day, with ``.CHECKSUM``) and klines files computed from
them, served over HTTP. For demos and notebooks without internet (``base_url="sample"``); it is
not Binance's data, and says so wherever it is used."""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptolab.feeds.server.tapes import KLINE_MS, MILLISECOND, ServerTape, klines
from cryptolab.feeds.tapes.vision import klines_file, trades_file

log = logging.getLogger(__name__)


def _publish(root: Path, path: str, member: str, text: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    (root / f"{path}.CHECKSUM").write_text(f"{digest}  {target.name}\n")


def _day(item: dict[str, Any]) -> str:
    micros = item["time"] if item["time"] >= 10**14 else item["time"] * 1000
    return f"{datetime.fromtimestamp(micros / 1e6, tz=UTC):%Y-%m-%d}"


def write_archive(frames: Iterable[str | bytes], root: Path) -> list[str]:
    """The trades of ``frames`` (a tape's lines) laid out under ``root`` like data.binance.vision
    (times in the tape's unit), with klines of every interval; returns the files' paths."""
    tape = ServerTape(list(frames))
    written: list[str] = []
    for symbol in sorted(tape.symbols):
        tape.reach(symbol, 2**63 - 1)
        by_day: dict[str, list[dict[str, Any]]] = {}
        for item in tape.reached(symbol):
            by_day.setdefault(_day(item), []).append(item)
        for day, items in sorted(by_day.items()):
            rows = [
                f"{t['id']},{t['price']},{t['qty']},{t['quoteQty']},{t['time']},"
                f"{t['isBuyerMaker']},{t['isBestMatch']}"
                for t in items
            ]
            path = trades_file(symbol, day)
            _publish(root, path, path.rsplit("/", 1)[-1][:-4] + ".csv", "\n".join(rows) + "\n")
            written.append(path)
            start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 1000
            unit = "MICROSECOND" if items[0]["time"] >= 10**14 else MILLISECOND
            for interval, width in KLINE_MS.items():
                lines = klines(items, width, start, start + 86_400_000 - 1, unit)
                path = klines_file(symbol, interval, day)
                text = "\n".join(",".join(map(str, row)) for row in lines) + "\n"
                _publish(root, path, path.rsplit("/", 1)[-1][:-4] + ".csv", text)
                written.append(path)
    return written


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class ArchiveServer:
    """Serves ``root`` on 127.0.0.1 (a free port) from a daemon thread."""

    def __init__(self, root: Path) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> ArchiveServer:
        self.thread.start()
        log.info("local archive (not Binance's) on %s", self.url)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
