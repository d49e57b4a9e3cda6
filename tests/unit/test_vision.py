"""data.binance.vision spot trades files -> tapes (`cryptolab tape import`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from cryptolab.cli import main
from cryptolab.errors import TapeError
from cryptolab.feeds.tapes.tape import read_frames
from cryptolab.feeds.tapes.vision import vision_frames
from cryptolab.model import parse_frame

LATE = 2**62  # µs: the producer's clock, after any trade time a test uses

# 2024 files: milliseconds; 2025 files: microseconds
ROWS_2024 = (
    "3327890000,93429.99000000,0.00010000,9.34299900,1735689599996,True,True\n"
    "3327890001,93430.00000000,0.01234000,1152.92620000,1735689599999,False,True\n"
)
ROWS_2025 = (
    "3327890002,93430.01000000,0.00500000,467.15005000,1735689600000123,False,True\n"
    "3327890003,93429.98000000,0.10000000,9342.99800000,1735689600001999,True,True\n"
)


def test_csv_and_zip_become_frames_with_the_files_own_times(tmp_path: Path) -> None:
    csv_path = tmp_path / "BTCUSDT-trades-2025-01-01.csv"
    csv_path.write_text(ROWS_2024 + ROWS_2025)
    zip_path = tmp_path / "BTCUSDT-trades-2025-01-01.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.write(csv_path, csv_path.name)
    for path in (csv_path, zip_path):
        trades = [parse_frame(f, ingest_time=LATE) for f in vision_frames(path, "btcusdt")]
        assert [t.trade_id for t in trades] == [3327890000, 3327890001, 3327890002, 3327890003]
        assert [t.trade_time for t in trades] == [  # µs: the 2025 rows keep theirs exactly
            1735689599996_000,
            1735689599999_000,
            1735689600000_123,
            1735689600001_999,
        ]
        assert [t.is_buyer_maker for t in trades] == [True, False, False, True]
        assert trades[1].price == "93430.00000000" and trades[1].qty == "0.01234000"
        assert {t.symbol for t in trades} == {"BTCUSDT"}
        assert all(t.event_time == t.trade_time for t in trades)


def test_a_header_row_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "with_header.csv"
    path.write_text("id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch\n" + ROWS_2024)
    assert len(list(vision_frames(path, "BTCUSDT"))) == 2


def test_cli_import_writes_a_tape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "t.csv"
    src.write_text(ROWS_2025)
    out = tmp_path / "tape.jsonl.gz"
    assert main(["tape", "import", str(src), "--symbol", "BTCUSDT", "--out", str(out)]) == 0
    assert "wrote 2 trades" in capsys.readouterr().out
    assert [parse_frame(f).trade_id for f in read_frames(out)] == [3327890002, 3327890003]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("3327890000,abc,0.1,1,1735689599996,True,True\n", "line 1"),
        (ROWS_2024 + "3327890002,1.0,0.1,1,1735689599996,maybe,True\n", "line 3"),
        ("1,2,3\n", "expected 7 columns"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(TapeError, match=message):
        list(vision_frames(path, "BTCUSDT"))


def test_missing_file_and_bad_zip_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TapeError, match="not found"):
        list(vision_frames(tmp_path / "nope.zip", "BTCUSDT"))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TapeError, match="not a zip file"):
        list(vision_frames(bad, "BTCUSDT"))
