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


def candle_differences(
    actual: dict[tuple[str, int], dict[str, object]],
    expected: dict[tuple[str, int], dict[str, object]],
) -> list[str]:
    """Every way ``actual`` differs from ``expected``, one line each (empty: equal): missing or
    unexpected windows, exact fields that differ, vwap (a float ratio) beyond 1e-12 relative."""
    problems = [f"missing window {key}" for key in sorted(set(expected) - set(actual))]
    problems += [f"unexpected window {key}" for key in sorted(set(actual) - set(expected))]
    for key, want in sorted(expected.items()):
        got = actual.get(key)
        if got is None:
            continue
        for field in EXACT_FIELDS:
            if got[field] != want[field]:
                problems.append(f"{key} {field}: got {got[field]} want {want[field]}")
        vwap_got, vwap_want = float(got["vwap"]), float(want["vwap"])  # type: ignore[arg-type]
        if not abs(vwap_got - vwap_want) <= 1e-12 * abs(vwap_want):
            problems.append(f"{key} vwap: got {vwap_got!r} want {vwap_want!r}")
    return problems


def assert_candles_equal(
    actual: dict[tuple[str, int], dict[str, object]],
    expected: dict[tuple[str, int], dict[str, object]],
) -> None:
    """Same windows; every exact field equal; vwap (a float ratio) within 1e-12 relative."""
    problems = candle_differences(actual, expected)
    assert not problems, f"{len(problems)} differences: {problems[:5]}"


def _as_of(times: list[int], prices: list[Decimal], t: int) -> Decimal | None:
    """The last price before ``t`` (times ascending)."""
    before = [p for tt, p in zip(times, prices, strict=True) if tt < t]
    return before[-1] if before else None


def _change(times: list[int], prices: list[Decimal], t: int) -> tuple[float | None, bool]:
    """Percent change of the last price against the price as of ``t`` (or the first price at or
    after ``t``, then partial)."""
    ref = _as_of(times, prices, t)
    partial = ref is None
    if ref is None:
        after = [p for tt, p in zip(times, prices, strict=True) if tt >= t]
        ref = after[0] if after else None
    if ref is None:
        return None, partial
    return (float(prices[-1]) / float(ref) - 1.0) * 100.0, partial


def reference_overview(trades: pd.DataFrame) -> dict[str, dict[str, object]]:
    """The market overview (cryptolab.store.overview's definitions) straight from raw trades.

    ``M`` = the minute of the newest trade; the price "as of" ``t`` = the last trade (by time,
    then id) before ``t``; a symbol without one compares with its first trade at or after ``t``
    (``partial``). Percent changes; quote volume = sum of price x qty (exact Decimal)."""
    trades = trades.sort_values(["symbol", "trade_time", "trade_id"])
    minute_us = 60_000_000  # trade_time is in microseconds
    minute = int(trades["trade_time"].max()) // minute_us * minute_us
    t1, t24 = minute - 60 * minute_us, minute - 1440 * minute_us
    result: dict[str, dict[str, object]] = {}
    for symbol, group in trades.groupby("symbol", sort=True):
        times, prices = [int(t) for t in group["trade_time"]], list(group["price"])
        recent = group[group["trade_time"] >= t24]
        with localcontext(prec=60):
            quote = sum(
                (p * q for p, q in zip(recent["price"], recent["qty"], strict=True)), Decimal(0)
            )
        spark = [_as_of(times, prices, t1 + (k + 1) * minute_us) for k in range(60)]
        change_1h, partial_1h = _change(times, prices, t1)
        change_24h, partial_24h = _change(times, prices, t24)
        in_last_minute = (group["trade_time"] >= minute - minute_us) & (
            group["trade_time"] < minute
        )
        result[str(symbol)] = {
            "last": prices[-1],
            "change_1h": change_1h,
            "change_1h_partial": partial_1h,
            "change_24h": change_24h,
            "change_24h_partial": partial_24h,
            "quote_volume_24h": quote,
            "trades_24h": len(recent),
            "trades_per_s": int(in_last_minute.sum()) / 60.0,
            "spark": [float(p) for p in spark if p is not None],
        }
    return result


KLINE_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trades", "buy_volume")


def reference_klines(
    trades: pd.DataFrame, interval_ms: int, start_ms: int, end_ms: int, previous_close: Decimal
) -> list[dict[str, object]]:
    """Binance-style klines of one symbol for every interval in ``[start_ms, end_ms)``, from
    trades (``trade_time`` in µs): open/close by (trade_time, trade_id); an interval without
    trades is a kline with volume 0 and every price the previous close (as Binance publishes
    them). Keys: open_time (ms) and KLINE_FIELDS, plus buy_quote_volume."""
    trades = trades.sort_values(["trade_time", "trade_id"])
    buckets = (trades["trade_time"] // 1000 - start_ms) // interval_ms
    groups = {int(k): g for k, g in trades.groupby(buckets)}
    klines: list[dict[str, object]] = []
    close = previous_close
    for n in range((end_ms - start_ms) // interval_ms):
        group = groups.get(n)
        if group is None:
            zero = Decimal(0)
            klines.append({"open_time": start_ms + n * interval_ms, "open": close, "high": close,
                           "low": close, "close": close, "volume": zero, "quote_volume": zero,
                           "trades": 0, "buy_volume": zero, "buy_quote_volume": zero})  # fmt: skip
            continue
        prices, qtys, makers = list(group["price"]), list(group["qty"]), list(group["m"])
        with localcontext(prec=60):
            quotes = [p * q for p, q in zip(prices, qtys, strict=True)]
            klines.append({
                "open_time": start_ms + n * interval_ms,
                "open": prices[0], "high": max(prices), "low": min(prices), "close": prices[-1],
                "volume": sum(qtys, Decimal(0)), "quote_volume": sum(quotes, Decimal(0)),
                "trades": len(prices),
                "buy_volume": sum((q for q, m in zip(qtys, makers, strict=True) if not m),
                                  Decimal(0)),
                "buy_quote_volume": sum((x for x, m in zip(quotes, makers, strict=True) if not m),
                                        Decimal(0)),
            })  # fmt: skip
        close = prices[-1]
    return klines
