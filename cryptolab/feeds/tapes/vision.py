"""Binance public data (https://data.binance.vision) -> tapes.

Spot ``trades`` files are CSV, one trade per line, no header, in trade-id order::

    id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch
    5400192939,97000.00000000,0.00065000,63.05000000,1735689600113544,False,True

``time`` is in microseconds for files from 2025-01-01 on and in milliseconds before; it is kept
as it is (the parser tells the units apart, :func:`cryptolab.model.to_micros`). The files come
zipped (``BTCUSDT-trades-2025-01-01.zip``); either the ``.zip`` or the extracted ``.csv`` can be
imported. Each row becomes a combined-stream trade frame with ``E = T`` (the dump has no event
time).
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from cryptolab.errors import TapeError
from cryptolab.feeds.tapes.tape import write_frames
from cryptolab.frames import trade_frame

log = logging.getLogger(__name__)

CSV_COLUMNS = ("id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch")
"""The columns of a spot trades file, in order (the files have no header row)."""
BOOLS = {"true": True, "false": False}


@contextmanager
def _open_csv(path: Path) -> Iterator[IO[str]]:
    if not path.is_file():
        raise TapeError(f"file not found: {path}")
    if path.suffix.lower() != ".zip":
        with open(path, encoding="utf-8", newline="") as handle:
            yield handle
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise TapeError(f"{path} is not a zip file: {exc}") from exc
    with archive:
        members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        if len(members) != 1:
            raise TapeError(f"{path} must hold exactly one .csv file, found {members}")
        with archive.open(members[0]) as raw:
            yield io.TextIOWrapper(raw, encoding="utf-8", newline="")


def _decimal(raw: str) -> str:
    if not Decimal(raw).is_finite():
        raise ValueError(f"not a finite number: {raw!r}")
    return raw


def row_frame(row: list[str], symbol: str) -> str:
    """One CSV row -> frame. Raises ValueError/KeyError/InvalidOperation on a malformed row."""
    if len(row) < 6:
        raise ValueError(f"expected 7 columns, got {len(row)}")
    trade_time = int(row[4])
    if trade_time < 0:
        raise ValueError(f"negative time {row[4]!r}")
    return trade_frame(
        symbol,
        int(row[0]),
        _decimal(row[1]),
        _decimal(row[2]),
        trade_time,
        BOOLS[row[5].strip().lower()],
        BOOLS[row[6].strip().lower()] if len(row) > 6 else True,
    )


def vision_frames(path: Path, symbol: str) -> Iterator[str]:
    """Frames of a data.binance.vision spot trades file (.csv or .zip), in file order."""
    symbol = symbol.upper()
    if not symbol.isalnum():
        raise TapeError(f"symbol {symbol!r} must be letters and digits, like BTCUSDT")
    path = Path(path)
    with _open_csv(path) as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or (number == 1 and not row[0].strip().isdigit()):
                continue  # blank line, or a header row
            try:
                yield row_frame(row, symbol)
            except (ValueError, KeyError, InvalidOperation) as exc:
                raise TapeError(
                    f"{path} line {number}: not a spot trade row "
                    f"(id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch): {exc}"
                ) from None


def import_tape(path: Path, symbol: str, out: Path) -> int:
    """Convert a data.binance.vision trades file to a tape; returns the number of trades."""
    count = write_frames(out, vision_frames(path, symbol))
    log.info("imported trades=%d from=%s to=%s", count, path, out)
    return count
