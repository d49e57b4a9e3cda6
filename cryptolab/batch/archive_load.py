"""One published trades file (a data.binance.vision zip) into ``trades``, all or nothing.

ClickHouse reads the CSV itself (``file(..., 'CSV')``, parsed in parallel). chDB cannot read
inside a zip, so a thread feeds the one CSV member through a named pipe while ClickHouse reads
it, with nothing extracted to disk: a deflated member (Binance's) is passed on *still
compressed*, wrapped as a gzip stream (the zip's raw deflate data between a gzip header and a
trailer holding the member's CRC-32 and size), so ClickHouse inflates it itself and checks the
CRC at the end; any other member is inflated by Python's ``zipfile`` (which checks the CRC). The
rows go to a scratch table of the same definition first; only when the whole stream was read
and checked are its partitions attached to ``trades`` (a metadata-only move), so a broken file
leaves nothing behind. Times are converted by their size (:data:`cryptolab.model.MICROS_FROM`):
a 2024 file (ms) and a 2025 file (µs) both load exactly.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
import threading
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

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
    FROM file({path:String}, 'CSV', {schema:String}, {compression:String})
    SETTINGS optimize_on_insert = 0, input_format_csv_detect_header = 0,
             input_format_csv_skip_first_lines = """
"""The file has no event time: like ``tape import``, ``event_time = trade_time``.
``optimize_on_insert = 0``: no deduplication inside each inserted block (~20 % of the load's CPU);
a published file has no repeated id, and ``trades`` is read with FINAL anyway."""
CHUNK = 1 << 20
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no time
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra length


@dataclass(frozen=True)
class LoadedFile:
    symbol: str
    name: str
    trades: int
    first_trade_id: int
    last_trade_id: int
    first_trade_time: datetime
    last_trade_time: datetime


@dataclass(frozen=True)
class _Member:
    """The zip's one CSV member: where its compressed bytes start, and whether its first line
    is a header (some files have one)."""

    info: zipfile.ZipInfo
    offset: int
    header: bool

    @property
    def deflated(self) -> bool:
        return self.info.compress_type == zipfile.ZIP_DEFLATED


def _member(archive: Path) -> _Member:
    try:
        with zipfile.ZipFile(archive) as opened:
            members = [i for i in opened.infolist() if i.filename.lower().endswith(".csv")]
            if len(members) != 1:
                names = [i.filename for i in members]
                raise HistoryError(f"{archive.name} must hold one .csv file, has {names}")
            info = members[0]
            with opened.open(info) as source:
                first = source.readline(4096).decode("utf-8", "replace")
        with open(archive, "rb") as handle:
            handle.seek(info.header_offset)
            signature, name_length, extra_length = _LOCAL_HEADER.unpack(handle.read(30))
    except (zipfile.BadZipFile, EOFError, zlib.error, struct.error, NotImplementedError) as exc:
        raise HistoryError(f"{archive.name} is not a readable zip ({exc})") from None
    if signature != b"PK\x03\x04":
        raise HistoryError(f"{archive.name} is not a readable zip (bad local header)")
    offset = info.header_offset + 30 + name_length + extra_length
    return _Member(info, offset, bool(first) and is_header(first))


class _Feeder(threading.Thread):
    """Writes the member into ``pipe``: deflated data as a gzip stream, anything else inflated."""

    def __init__(self, archive: Path, member: _Member, pipe: Path) -> None:
        super().__init__(name="history-feed", daemon=True)
        self.archive, self.member, self.pipe = archive, member, pipe
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            # the pipe first: whatever fails next, closing it ends ClickHouse's read (EOF)
            with open(self.pipe, "wb") as sink:
                if self.member.deflated:
                    self._as_gzip(sink)
                else:
                    self._inflated(sink)
        except BaseException as exc:  # reported by load_file, never lost
            self.error = exc

    def _as_gzip(self, sink: BinaryIO) -> None:
        info = self.member.info
        sink.write(_GZIP_HEADER)
        with open(self.archive, "rb") as source:
            source.seek(self.member.offset)
            left = info.compress_size
            while left > 0:
                block = source.read(min(left, CHUNK))
                if not block:
                    raise HistoryError(f"{self.archive.name} ends before its data does")
                sink.write(block)
                left -= len(block)
        sink.write(struct.pack("<II", info.CRC & 0xFFFFFFFF, info.file_size & 0xFFFFFFFF))

    def _inflated(self, sink: BinaryIO) -> None:
        with zipfile.ZipFile(self.archive) as opened, opened.open(self.member.info) as source:
            while block := source.read(CHUNK):  # zipfile checks the CRC at the end
                sink.write(block)

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
    member = _member(archive)
    scratch = f"{TRADES}__load_{uuid.uuid4().hex[:12]}"
    store.command(f"CREATE TABLE {store.table(scratch)} AS {store.table(TRADES)}")
    try:
        _read_into(store, archive, member, symbol, scratch)
        loaded = _summary(store, scratch, symbol, archive.name)
        if not loaded.trades and member.info.file_size > 200:
            raise HistoryError(f"{archive.name}: no trade rows in {member.info.file_size} bytes")
        _attach(store, scratch)
    finally:
        store.command(f"DROP TABLE IF EXISTS {store.table(scratch)}")
    _record(store, loaded, sha256)
    return loaded


def _read_into(store: Store, archive: Path, member: _Member, symbol: str, scratch: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cryptolab-history-") as tmp:
        pipe = Path(tmp) / "trades.csv"
        os.mkfifo(pipe)
        feeder = _Feeder(archive, member, pipe)
        feeder.start()
        failure: BaseException | None = None
        try:
            store.command(
                f"INSERT INTO {store.table(scratch)} (symbol, trade_id, price, qty, trade_time, "
                f"event_time, is_buyer_maker, ingest_time) {_FROM_CSV}{int(member.header)}",
                {
                    "symbol": symbol,
                    "micros_from": MICROS_FROM,
                    "path": str(pipe),
                    "schema": CSV_SCHEMA,
                    "compression": "gzip" if member.deflated else "none",
                },
            )
        except Exception as exc:  # the feeder's error, when there is one, says more
            failure = exc
        finally:
            feeder.release()
    error = feeder.error
    if error is not None and not isinstance(error, BrokenPipeError):  # else ClickHouse stopped
        if isinstance(error, zipfile.BadZipFile | EOFError | zlib.error):
            raise HistoryError(f"{archive.name} is not a readable zip ({error})") from None
        if isinstance(error, HistoryError):
            raise error
        raise HistoryError(f"cannot read {archive.name}: {error!r}") from None
    if failure is not None or error is not None:
        text = str(failure or error)
        first = text.strip().splitlines()[0][:300] if text.strip() else repr(failure or error)
        raise HistoryError(f"ClickHouse could not read {archive.name}: {first}") from None


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
