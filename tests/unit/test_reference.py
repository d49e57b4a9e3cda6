"""The reference computation itself, checked on a hand-computed example."""

from decimal import Decimal
from pathlib import Path

import orjson

from tests.reference import candle_differences, reference_candles, tape_trades


def _frame(
    t: int, price: str, qty: str, trade_time: int, maker: bool, symbol: str = "BTCUSDT"
) -> str:
    data = {
        "e": "trade",
        "E": trade_time + 1,
        "s": symbol,
        "t": t,
        "p": price,
        "q": qty,
        "T": trade_time,
        "m": maker,
        "M": True,
    }
    return orjson.dumps({"stream": f"{symbol.lower()}@trade", "data": data}).decode()


def test_hand_computed_window(tmp_path: Path) -> None:
    lines = [
        _frame(3, "101.00000000", "2.00000000", 1_000_004_000, False),  # arrives first, not open
        _frame(1, "100.00000000", "1.00000000", 1_000_001_000, True),
        _frame(2, "102.00000000", "1.00000000", 1_000_001_000, False),  # same T as id 1
        _frame(2, "102.00000000", "1.00000000", 1_000_001_000, False),  # duplicate
        _frame(4, "99.00000000", "0.50000000", 1_000_010_000, True),  # next window
        "garbage",
    ]
    tape = tmp_path / "t.jsonl"
    tape.write_text("\n".join(lines) + "\n")
    candles = reference_candles(tape_trades(tape))
    first = candles[("BTCUSDT", 1_000_000_000)]
    assert first["open"] == Decimal("100") and first["close"] == Decimal("101")
    assert first["high"] == Decimal("102") and first["low"] == Decimal("100")
    assert first["trades"] == 3 and first["volume"] == Decimal("4")
    assert first["quote_volume"] == Decimal("404")
    assert first["buy_volume"] == Decimal("3")
    assert (first["first_trade_id"], first["last_trade_id"]) == (1, 3)
    assert first["vwap"] == 101.0
    assert candles[("BTCUSDT", 1_000_010_000)]["trades"] == 1


def test_candle_differences_names_each_difference(tmp_path: Path) -> None:
    tape = tmp_path / "t.jsonl"
    tape.write_text(
        "\n".join(
            [
                _frame(1, "100.00000000", "1.00000000", 1_000_001_000, True),
                _frame(2, "101.00000000", "1.00000000", 1_000_011_000, True),
            ]
        )
    )
    expected = reference_candles(tape_trades(tape))
    assert candle_differences(expected, expected) == []
    first, second = sorted(expected)
    changed = {first: {**expected[first], "close": Decimal("100.00000001")}}
    assert candle_differences(changed, expected) == [
        f"missing window {second}",
        f"{first} close: got 100.00000001 want 100.00000000",
    ]
    extra = {**expected, ("ETHUSDT", 0): expected[first]}
    assert candle_differences(extra, expected) == ["unexpected window ('ETHUSDT', 0)"]
