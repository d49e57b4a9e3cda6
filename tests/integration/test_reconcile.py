"""Reconciliation and rollups on the real store: exact against pandas, idempotent."""

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from cryptolab.cli.render import render_candles
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from cryptolab.store import open_store, queries
from cryptolab.store.reconcile import reconcile
from cryptolab.store.schema import CANDLES_10S, TRADES
from tests.reference import assert_candles_equal, parse_candles_csv, reference_candles, tape_trades

TS = pa.timestamp("ms", tz="UTC")
TS_US = pa.timestamp("us", tz="UTC")  # trade times


def trades_table(trades: Any) -> pa.Table:
    n = len(trades)
    return pa.table({
        "symbol": list(trades["symbol"]),
        "trade_id": pa.array(list(trades["trade_id"]), pa.int64()),
        "price": pa.array(list(trades["price"]), pa.decimal128(18, 8)),
        "qty": pa.array(list(trades["qty"]), pa.decimal128(18, 8)),
        "trade_time": pa.array(list(trades["trade_time"]), TS_US),
        "event_time": pa.array(list(trades["trade_time"]), TS_US),
        "is_buyer_maker": list(trades["m"]),
        "ingest_time": pa.array([0] * n, TS_US),
    })  # fmt: skip


def stored(store: Any, symbols: list[str], interval: str = "10s") -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for symbol in symbols:
        csv = render_candles(queries.candles(store, symbol, interval), "csv")
        result.update(parse_candles_csv(csv))
    return result


@pytest.fixture
def loaded(make_settings: Any, tmp_path: Path) -> tuple[Any, Any]:
    """A store holding 2 h of raw trades for two symbols (and no candles yet)."""
    tape = tmp_path / "t.jsonl"
    write_frames(tape, synth_frames(["BTCUSDT", "ETHUSDT"], 7200, 2, seed=31, jitter_ms=1500))
    trades = tape_trades(tape)
    store = open_store(make_settings())
    store.insert_arrow(TRADES, trades_table(trades))
    return store, trades


def test_reconcile_builds_exact_candles_and_is_idempotent(loaded: tuple[Any, Any]) -> None:
    store, trades = loaded
    report = reconcile(store, datetime(1970, 1, 1, tzinfo=UTC))
    reference = reference_candles(trades)
    assert len(report.changed) == report.windows_checked == len(reference)
    assert all(c.trades_before == 0 for c in report.changed)
    assert_candles_equal(stored(store, ["BTCUSDT", "ETHUSDT"]), reference)
    again = reconcile(store, datetime(1970, 1, 1, tzinfo=UTC))
    assert again.windows_checked == len(reference) and again.changed == []


def test_reconcile_names_exactly_the_windows_it_corrects(loaded: tuple[Any, Any]) -> None:
    store, trades = loaded
    reconcile(store, datetime(1970, 1, 1, tzinfo=UTC))
    # corrupt two stored candles (as a stream that missed late trades would) and drop one
    frame = queries.candles(store, "BTCUSDT")
    bad = frame.iloc[[5, 40]].copy()
    bad["trades"] = bad["trades"] - 1
    bad["close"] = pd.Series([Decimal("1.00000000")] * 2, index=bad.index)
    table = pa.Table.from_pandas(bad.drop(columns=["window_end"]), preserve_index=False)
    table = table.append_column("window_end", pa.array(list(bad["window_end"]), TS))
    table = table.append_column("updated_at", pa.array([int(time.time() * 1000)] * 2, TS))
    store.insert_arrow(CANDLES_10S, table.cast(pa.schema([
        pa.field(f.name, TS if f.name in ("window_start", "window_end") else f.type)
        for f in table.schema
    ])))  # fmt: skip
    start = frame["window_start"].iloc[30].to_pydatetime()
    store.command(
        f"ALTER TABLE {store.table(CANDLES_10S)} DELETE WHERE symbol = 'BTCUSDT' "
        "AND window_start = {ws:DateTime64(3, 'UTC')}",
        {"ws": start},
    )
    report = reconcile(store, datetime(1970, 1, 1, tzinfo=UTC))
    changed = {(c.symbol, c.window_start) for c in report.changed}
    expected = {("BTCUSDT", ws.to_pydatetime()) for ws in frame["window_start"].iloc[[5, 30, 40]]}
    assert changed == expected
    assert_candles_equal(stored(store, ["BTCUSDT", "ETHUSDT"]), reference_candles(trades))


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "1d"])
def test_rollups_equal_a_pandas_resample_of_raw_trades(
    loaded: tuple[Any, Any], interval: str
) -> None:
    store, trades = loaded
    reconcile(store, datetime(1970, 1, 1, tzinfo=UTC))
    window_ms = queries.INTERVAL_SECONDS[interval] * 1000
    assert_candles_equal(
        stored(store, ["BTCUSDT", "ETHUSDT"], interval), reference_candles(trades, window_ms)
    )


def test_rollup_range_returns_whole_buckets(loaded: tuple[Any, Any]) -> None:
    store, _ = loaded
    reconcile(store, datetime(1970, 1, 1, tzinfo=UTC))
    full = queries.candles(store, "BTCUSDT", "1h")
    first = full["window_start"].iloc[0].to_pydatetime()
    part = queries.candles(store, "BTCUSDT", "1h", start=first.replace(minute=30),
                           end=first.replace(minute=45))  # fmt: skip
    assert len(part) == 1
    assert part.iloc[0]["trades"] == full.iloc[0]["trades"]


def test_seed_view_and_retention(make_settings: Any, loaded: tuple[Any, Any]) -> None:
    store, trades = loaded
    rows = store.query_rows(
        f"SELECT count(), min(window_start), max(price) FROM {store.table('binance_trades')}"
    )
    assert rows[0][0] == len(trades)
    assert rows[0][2] == float(max(trades["price"]))
    kept = open_store(make_settings(clickhouse_database=store.database, trades_ttl_days=30))
    ddl = kept.query_rows(f"SHOW CREATE TABLE {kept.table(TRADES)}")[0][0]
    assert "TTL toDateTime(trade_time) + toIntervalDay(30)" in ddl
    open_store(make_settings(clickhouse_database=store.database))
    assert " TTL " not in kept.query_rows(f"SHOW CREATE TABLE {kept.table(TRADES)}")[0][0]
