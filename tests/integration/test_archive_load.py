"""One published trades zip into the store: Binance's deflated members go to ClickHouse still
compressed (gzip-wrapped), other members inflated by Python; a header line is skipped; a file
whose data does not match its own CRC leaves nothing behind."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from cryptolab.batch.archive_load import load_file
from cryptolab.errors import HistoryError
from cryptolab.store import open_store

ROWS = (
    "7,93000.01000000,0.00100000,93.00001000,1735689600000123,True,True\n"
    "8,93000.02000000,0.00200000,186.00004000,1735689600000123,False,True\n"
    "9,93000.03000000,0.00300000,279.00009000,1735689600999999,False,True\n"
)
HEADER = "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n"


def stored(store: Any) -> list[tuple[Any, ...]]:
    return store.query_rows(
        "SELECT trade_id, toString(price), toUnixTimestamp64Micro(trade_time), is_buyer_maker "
        f"FROM {store.table('trades')} FINAL ORDER BY trade_id"
    )


WANT = [(7, "93000.01", 1735689600000123, True), (8, "93000.02", 1735689600000123, False),
        (9, "93000.03", 1735689600999999, False)]  # fmt: skip


@pytest.mark.parametrize(
    ("compression", "text"),
    [(zipfile.ZIP_DEFLATED, ROWS), (zipfile.ZIP_DEFLATED, HEADER + ROWS),
     (zipfile.ZIP_STORED, HEADER + ROWS), (zipfile.ZIP_BZIP2, ROWS.rstrip("\n"))],
)  # fmt: skip
def test_every_member_kind_loads_exactly(
    make_settings: Any, tmp_path: Path, compression: int, text: str
) -> None:
    path = tmp_path / "BTCUSDT-trades-2025-01-01.zip"
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("BTCUSDT-trades-2025-01-01.csv", text)
    store = open_store(make_settings())
    loaded = load_file(store, path, "BTCUSDT", "x")
    assert (loaded.trades, loaded.first_trade_id, loaded.last_trade_id) == (3, 7, 9)
    assert stored(store) == WANT


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_data_that_fails_its_crc_leaves_nothing(
    make_settings: Any, tmp_path: Path, compression: int
) -> None:
    path = tmp_path / "BTCUSDT-trades-2025-01-01.zip"
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("BTCUSDT-trades-2025-01-01.csv", ROWS * 200)
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0x01
    path.write_bytes(bytes(data))  # one bit flipped in the middle of the member's data
    store = open_store(make_settings())
    with pytest.raises(HistoryError, match=r"BTCUSDT-trades-2025-01-01\.zip"):
        load_file(store, path, "BTCUSDT", "x")
    assert stored(store) == []
    leftovers = store.query_rows(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name LIKE 'trades__%'",
        {"db": store.database},
    )
    assert leftovers == [(0,)]
