"""An independent batch computation of 10 s candles from a tape, in plain pandas + Decimal.

It shares no code with cryptolab: frames are parsed with the standard json module and windows
are computed by integer division, so a bug in the streaming path cannot hide in both.

Times: a frame's ``T`` is milliseconds or microseconds (Binance's ``timeUnit=MICROSECOND``, and
its 2025+ files); a value of 15 digits or more is microseconds. ``trade_time`` below is always
microseconds since the epoch; candle keys stay ``(symbol, window_start_ms)``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from decimal import Decimal, localcontext
from pathlib import Path
from typing import cast

import pandas as pd

WINDOW_MS = 10_000
US_FROM = 100_000_000_000_000
"""15 digits: a microsecond time (1973 on); fewer: milliseconds (until the year 5138)."""


def micros(raw: int) -> int:
    """A raw Binance time (ms or µs) in microseconds."""
    return raw if raw >= US_FROM else raw * 1000


EXACT_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "buy_volume",
    "first_trade_id",
    "last_trade_id",
)


def tape_trades(path: Path) -> pd.DataFrame:
    """Every well-formed trade of a tape (bad lines skipped), deduplicated by (symbol, id);
    ``trade_time`` in microseconds."""
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            try:
                data = json.loads(line)["data"]
                if data["e"] != "trade":
                    continue
                price, qty = Decimal(data["p"]), Decimal(data["q"])
                if not (price > 0 and qty > 0) or not isinstance(data["t"], int):
                    continue
                if not isinstance(data["m"], bool) or not isinstance(data["T"], int):
                    continue
                rows.append((data["s"], data["t"], price, qty, micros(data["T"]), data["m"]))
            except (ValueError, KeyError, TypeError, ArithmeticError):
                continue
    frame = pd.DataFrame(rows, columns=["symbol", "trade_id", "price", "qty", "trade_time", "m"])
    return frame.drop_duplicates(["symbol", "trade_id"]).reset_index(drop=True)


def reference_candles(
    trades: pd.DataFrame, window_ms: int = WINDOW_MS
) -> dict[tuple[str, int], dict[str, object]]:
    """(symbol, window_start_ms) -> candle fields, open/close by (trade_time, trade_id), with
    ``trade_time`` in microseconds (as :func:`tape_trades` gives it).

    ``window_ms`` other than 10 s gives the rollups (buckets aligned to the epoch, i.e. UTC)."""
    trades = trades.sort_values(["symbol", "trade_time", "trade_id"]).copy()
    trades["window"] = trades["trade_time"] // (window_ms * 1000) * window_ms
    result: dict[tuple[str, int], dict[str, object]] = {}
    for (symbol, window), group in trades.groupby(["symbol", "window"], sort=True):
        prices, qtys = list(group["price"]), list(group["qty"])
        with localcontext(prec=60):  # exact: the default 28 digits round large quote volumes
            volume = sum(qtys, Decimal(0))
            quote = sum((p * q for p, q in zip(prices, qtys, strict=True)), Decimal(0))
            buys = sum((q for q, m in zip(qtys, group["m"], strict=True) if not m), Decimal(0))
        result[(str(symbol), int(cast(int, window)))] = {
            "open": prices[0],
            "high": max(prices),
            "low": min(prices),
            "close": prices[-1],
            "volume": volume,
            "quote_volume": quote,
            "vwap": float(quote) / float(volume),
            "trades": len(prices),
            "buy_volume": buys,
            "first_trade_id": int(group["trade_id"].iloc[0]),
            "last_trade_id": int(group["trade_id"].iloc[-1]),
        }
    return result


def parse_candles_csv(text: str) -> dict[tuple[str, int], dict[str, object]]:
    """`cryptolab query candles --format csv` output -> the same shape as reference_candles."""
    result: dict[tuple[str, int], dict[str, object]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        start = pd.Timestamp(row["window_start"]).value // 1_000_000
        result[(row["symbol"], int(start))] = {
            **{
                k: Decimal(row[k])
                for k in ("open", "high", "low", "close", "volume", "quote_volume", "buy_volume")
            },
            "vwap": float(row["vwap"]),
            "trades": int(row["trades"]),
            "first_trade_id": int(row["first_trade_id"]),
            "last_trade_id": int(row["last_trade_id"]),
        }
    return result


def assert_candles_equal(
    actual: dict[tuple[str, int], dict[str, object]],
    expected: dict[tuple[str, int], dict[str, object]],
) -> None:
    """Same windows; every exact field equal; vwap (a float ratio) within 1e-12 relative."""
    missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
    assert not missing and not extra, f"missing windows {missing[:5]}, unexpected {extra[:5]}"
    for key, want in expected.items():
        got = actual[key]
        for field in EXACT_FIELDS:
            assert got[field] == want[field], f"{key} {field}: got {got[field]} want {want[field]}"
        vwap_got, vwap_want = float(got["vwap"]), float(want["vwap"])  # type: ignore[arg-type]
        assert abs(vwap_got - vwap_want) <= 1e-12 * abs(vwap_want), f"{key} vwap"
