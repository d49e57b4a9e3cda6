"""One published trades file (a data.binance.vision zip) into ``trades``, all or nothing.

ClickHouse reads the CSV itself (``file(..., 'CSV')``, parsed in parallel). chDB cannot read
inside a zip, so a thread unzips the one CSV member into a named pipe that ClickHouse reads
while it is written: nothing is extracted to disk, and unzipping overlaps parsing. The rows go
to a scratch table of the same definition first; only when ClickHouse read every line the pipe
carried (and the unzip ended cleanly) are its partitions attached to ``trades`` (a
metadata-only move), so a broken file leaves nothing behind. Times are converted by their size
(:data:`cryptolab.model.MICROS_FROM`): a 2024 file (ms) and a 2025 file (µs) both load exactly.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptolab.errors import HistoryError
from cryptolab.feeds.tapes.vision import is_header
from cryptolab.model import MICROS_FROM
from cryptolab.store.client import Store
from cryptolab.store.schema import HISTORY_FILES, TRADES, TS_US
from cryptolab.times import to_utc

log = logging.getLogger(__name__)

CSV_SCHEMA = (
    "id UInt64, price Decimal(18, 8), qty Decimal(18, 8), quote_qty String, time UInt64, "
    "is_buyer_maker Bool, is_best_match Bool"
)
"""A spot trades file's columns (:data:`cryptolab.feeds.tapes.vision.CSV_COLUMNS`) as ClickHouse
reads them."""
_FROM_CSV = """
    SELECT {symbol:String} AS symbol, id AS trade_id, price, qty,
           fromUnixTimestamp64Micro(toInt64(if(time >= {micros_from:UInt64}, time, time * 1000)),
                                    'UTC') AS trade_time,
           trade_time AS event_time, is_buyer_maker, now64(6) AS ingest_time
    FROM file({path:String}, 'CSV', {schema:String})
    SETTINGS input_format_csv_detect_header = 0"""
"""The file has no event time: like ``tape import``, ``event_time = trade_time``."""
CHUNK = 1 << 20


@dataclass(frozen=True)
class LoadedFile:
    symbol: str
    name: str
    trades: int
    first_trade_id: int
    last_trade_id: int
    first_trade_time: datetime
    last_trade_time: datetime


class _Unzipper(threading.Thread):
    """Writes the zip's one CSV member into ``pipe`` (header line dropped), counting lines."""

    def __init__(self, archive: Path, pipe: Path) -> None:
        super().__init__(name="history-unzip", daemon=True)
        self.archive, self.pipe = archive, pipe
        self.lines = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._copy()
        except BaseException as exc:  # reported by load_file, never lost
            self.error = exc

    def _copy(self) -> None:
        # the pipe first: whatever fails next, closing it ends ClickHouse's read (EOF)
        with open(self.pipe, "wb") as sink, zipfile.ZipFile(self.archive) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise HistoryError(f"{self.archive.name} must hold one .csv file, has {members}")
            with archive.open(members[0]) as source:
                first = source.readline()
                if first and not is_header(first.decode("utf-8", "replace")):
                    sink.write(first)
                    self.lines += 1
                last = b"\n"
                while block := source.read(CHUNK):
                    sink.write(block)
                    self.lines += block.count(b"\n")
                    last = block[-1:]
                if last != b"\n":
                    self.lines += 1  # a last line without a newline

    def release(self) -> None:
        """Unblock a writer still waiting for a reader (the insert failed before reading)."""
        if self.is_alive():
            try:
                fd = os.open(self.pipe, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                return
            os.close(fd)
        self.join(timeout=30)


def load_file(store: Store, archive: Path, symbol: str, sha256: str) -> LoadedFile:
    """Load one trades zip of ``symbol`` into ``trades`` (all rows or none) and record it in
    ``history_files``. Raises HistoryError saying what is wrong with the file."""
    scratch = f"{TRADES}__load_{uuid.uuid4().hex[:12]}"
    store.command(f"CREATE TABLE {store.table(scratch)} AS {store.table(TRADES)}")
    try:
        lines = _read_into(store, archive, symbol, scratch)
        loaded = _summary(store, scratch, symbol, archive.name)
        if loaded.trades != lines:
            raise HistoryError(
                f"{archive.name}: ClickHouse read {loaded.trades} rows of the {lines} lines "
                "the file holds; nothing of it was loaded"
            )
        _attach(store, scratch)
    finally:
        store.command(f"DROP TABLE IF EXISTS {store.table(scratch)}")
    _record(store, loaded, sha256)
    return loaded


def _read_into(store: Store, archive: Path, symbol: str, scratch: str) -> int:
    with tempfile.TemporaryDirectory(prefix="cryptolab-history-") as tmp:
        pipe = Path(tmp) / "trades.csv"
        os.mkfifo(pipe)
        unzip = _Unzipper(archive, pipe)
        unzip.start()
        failure: BaseException | None = None
        try:
            store.command(
                f"INSERT INTO {store.table(scratch)} (symbol, trade_id, price, qty, trade_time, "
                f"event_time, is_buyer_maker, ingest_time) {_FROM_CSV}",
                {
                    "symbol": symbol,
                    "micros_from": MICROS_FROM,
                    "path": str(pipe),
                    "schema": CSV_SCHEMA,
                },
            )
        except Exception as exc:  # the unzip's error, when there is one, says more
            failure = exc
        finally:
            unzip.release()
    error = unzip.error
    if error is not None and not isinstance(error, BrokenPipeError):  # else ClickHouse stopped
        if isinstance(error, zipfile.BadZipFile | EOFError | zlib.error):
            raise HistoryError(f"{archive.name} is not a readable zip ({error})") from None
        if isinstance(error, HistoryError):
            raise error
        raise HistoryError(f"cannot unzip {archive.name}: {error!r}") from None
    if failure is not None or error is not None:
        text = str(failure or error)
        first = text.strip().splitlines()[0][:300] if text.strip() else repr(failure or error)
        raise HistoryError(f"ClickHouse could not read {archive.name}: {first}") from None
    return unzip.lines


def _summary(store: Store, table: str, symbol: str, name: str) -> LoadedFile:
    count, first_id, last_id, first_time, last_time = store.query_rows(
        "SELECT count(), min(trade_id), max(trade_id), min(trade_time), max(trade_time) "  # noqa: S608 - identifiers only
        f"FROM {store.table(table)}"
    )[0]
    return LoadedFile(
        symbol, name, int(count), int(first_id), int(last_id), to_utc(first_time),
        to_utc(last_time),
    )  # fmt: skip


_PARTITION = re.compile(r"[0-9]{8}")


def _attach(store: Store, scratch: str) -> None:
    """Move the scratch table's parts into ``trades``, partition by partition (each move is
    atomic; ``trades`` deduplicates by (symbol, trade_id) as for any other insert)."""
    partitions = store.query_rows(
        "SELECT DISTINCT partition_id FROM system.parts WHERE database = {db:String} "
        "AND table = {table:String} AND active ORDER BY partition_id",
        {"db": store.database, "table": scratch},
    )
    for (partition,) in partitions:
        if not _PARTITION.fullmatch(str(partition)):
            raise HistoryError(f"unexpected partition {partition!r} of {scratch}")
        store.command(
            f"ALTER TABLE {store.table(TRADES)} ATTACH PARTITION ID '{partition}' "
            f"FROM {store.table(scratch)}"
        )


def _record(store: Store, loaded: LoadedFile, sha256: str) -> None:
    store.command(
        f"INSERT INTO {store.table(HISTORY_FILES)} (symbol, file, sha256, trades, "  # noqa: S608 - identifiers only
        "first_trade_id, last_trade_id, first_trade_time, last_trade_time) VALUES "
        f"({{symbol:String}}, {{file:String}}, {{sha:String}}, {{trades:UInt64}}, "
        f"{{first_id:UInt64}}, {{last_id:UInt64}}, {{first:{TS_US}}}, {{last:{TS_US}}})",
        {
            "symbol": loaded.symbol,
            "file": loaded.name,
            "sha": sha256,
            "trades": loaded.trades,
            "first_id": loaded.first_trade_id,
            "last_id": loaded.last_trade_id,
            "first": loaded.first_trade_time,
            "last": loaded.last_trade_time,
        },
    )


def loaded_files(store: Store, symbol: str) -> dict[str, str]:
    """File name -> sha256 of ``symbol``'s files already in the store."""
    rows = store.query_rows(
        f"SELECT file, argMax(sha256, loaded_at) FROM {store.table(HISTORY_FILES)} "  # noqa: S608
        "WHERE symbol = {symbol:String} GROUP BY file",
        {"symbol": symbol},
    )
    return {str(f): str(h) for f, h in rows}
