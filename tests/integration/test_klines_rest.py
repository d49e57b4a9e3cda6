"""`verify klines --rest` against the local Binance-protocol server's /api/v3/klines (recent
data): its klines are first checked against tests/reference.py, then compared with the candles
of the same trades loaded into a store."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptolab.batch.klines import parse_kline, rest_klines, verify_klines
from cryptolab.batch.load import load_tape
from cryptolab.feeds.server.app import ReplayServer
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import read_frames, write_frames
from cryptolab.store import open_store
from tests.reference import KLINE_FIELDS, reference_klines, tape_trades

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, 0, 40, tzinfo=UTC)


@pytest.mark.parametrize(("interval", "width"), [("1m", 60_000), ("5m", 300_000)])
def test_rest_klines_equal_the_reference_and_our_candles(
    make_settings: Any, tmp_path: Path, interval: str, width: int
) -> None:
    tape = tmp_path / "t.jsonl"
    write_frames(tape, synth_frames(["BTCUSDT"], 2400, 0.015, seed=61, micros=True))
    trades = tape_trades(tape)
    store = open_store(make_settings())
    load_tape(store, tape)
    with ReplayServer(list(read_frames(tape)), speed=None, port=0, start_now=True) as server:
        assert server.finished.wait(30)
        theirs = rest_klines(server.rest_url, "BTCUSDT", interval, START, END)
        report = verify_klines(store, "BTCUSDT", interval, START, END, rest_url=server.rest_url)
    start_ms = int(START.timestamp()) * 1000
    first = int(trades.trade_time.min()) // 1000 // width * width
    last = int(trades.trade_time.max()) // 1000 // width * width
    want = reference_klines(trades, width, first, last + width, Decimal(0))
    assert [k.open_time for k in theirs] == [k["open_time"] for k in want] and first >= start_ms
    for kline, expected in zip(theirs, want, strict=True):
        assert {f: kline.values[f] for f in KLINE_FIELDS} == {f: expected[f] for f in KLINE_FIELDS}
    assert interval != "1m" or any(k.empty for k in theirs), "minutes without a trade"
    assert report.ok and report.equal == report.compared == len(theirs)


def test_a_kline_row_in_either_unit_and_type() -> None:
    rest = [1735689600000, "93576.00", "93610.93", "93537.5", "93610.93", "8.21827", 1735689659999,
            "769060.5556593", 2728, "3.92117", "366969.6178482", "0"]  # fmt: skip
    archive = ["1735689600000000", *map(str, rest[1:])]
    assert parse_kline(rest) == parse_kline(archive)
    assert parse_kline(rest).open_time == 1735689600000
