"""The store on embedded chDB: schema, deduplication, parameterised queries."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from cryptolab.errors import StoreError
from cryptolab.store import open_store, queries
from cryptolab.store.schema import CANDLES_10S, TRADES


def _candles(symbol: str, starts_s: list[int], close: str, updated_ms: int) -> pa.Table:
    n = len(starts_s)
    ts = pa.timestamp("ms", tz="UTC")
    price = pa.array([Decimal(close)] * n, pa.decimal128(18, 8))
    return pa.table(
        {
            "symbol": [symbol] * n,
            "window_start": pa.array([s * 1000 for s in starts_s], ts),
            "window_end": pa.array([(s + 10) * 1000 for s in starts_s], ts),
            "open": price,
            "high": price,
            "low": price,
            "close": price,
            "volume": pa.array([Decimal(1)] * n, pa.decimal128(28, 8)),
            "quote_volume": pa.array([Decimal(close)] * n, pa.decimal128(38, 16)),
            "trades": pa.array([1] * n, pa.int64()),
            "buy_volume": pa.array([Decimal(0)] * n, pa.decimal128(28, 8)),
            "first_trade_id": pa.array([1] * n, pa.int64()),
            "last_trade_id": pa.array([1] * n, pa.int64()),
            "vwap": pa.array([float(close)] * n),
            "updated_at": pa.array([updated_ms] * n, ts),
        }
    )


def test_candles_replace_by_window_and_filter_by_time(make_settings: Any) -> None:
    store = open_store(make_settings())
    store.insert_arrow(CANDLES_10S, _candles("BTCUSDT", [0, 10, 20], "1.5", 1))
    store.insert_arrow(CANDLES_10S, _candles("BTCUSDT", [10], "2.5", 2))  # a later update
    store.insert_arrow(CANDLES_10S, _candles("ETHUSDT", [0], "9", 1))
    frame = queries.candles(store, "BTCUSDT")
    assert list(frame["close"]) == [Decimal("1.5"), Decimal("2.5"), Decimal("1.5")]
    assert frame["window_start"].iloc[0] == datetime(1970, 1, 1, tzinfo=UTC)
    window = queries.candles(
        store,
        "BTCUSDT",
        start=datetime(1970, 1, 1, 0, 0, 10, tzinfo=UTC),
        end=datetime(1970, 1, 1, 0, 0, 20, tzinfo=UTC),
    )
    assert len(window) == 1
    assert list(queries.candles(store, "BTCUSDT", last=2)["close"]) == [
        Decimal("2.5"),
        Decimal("1.5"),
    ]
    assert queries.symbols(store) == ["BTCUSDT", "ETHUSDT"]
    assert queries.candle_trade_counts(store) == {"BTCUSDT": 3, "ETHUSDT": 1}


def test_trades_deduplicate_by_symbol_and_id(make_settings: Any) -> None:
    store = open_store(make_settings())
    ts = pa.timestamp("ms", tz="UTC")
    table = pa.table(
        {
            "symbol": ["BTCUSDT", "BTCUSDT"],
            "trade_id": pa.array([1, 2], pa.int64()),
            "price": pa.array([Decimal("1"), Decimal("2")], pa.decimal128(18, 8)),
            "qty": pa.array([Decimal("1"), Decimal("1")], pa.decimal128(18, 8)),
            "trade_time": pa.array([1000, 2000], ts),
            "event_time": pa.array([1000, 2000], ts),
            "is_buyer_maker": [True, False],
            "ingest_time": pa.array([1000, 2000], ts),
        }
    )
    store.insert_arrow(TRADES, table)
    store.insert_arrow(TRADES, table)  # replayed
    assert queries.trade_counts(store) == {"BTCUSDT": 2}
    assert queries.newest_trade_time(store) == datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC)


def test_hostile_symbol_is_just_a_value(make_settings: Any) -> None:
    store = open_store(make_settings())
    store.insert_arrow(CANDLES_10S, _candles("BTCUSDT", [0], "1", 1))
    for hostile in ("' OR 1=1 --", "BTCUSDT' UNION SELECT * FROM system.tables --", "\\'; DROP"):
        assert queries.candles(store, hostile).empty
    assert len(queries.candles(store, "BTCUSDT")) == 1


def test_unknown_interval_and_url_are_clear_errors(make_settings: Any) -> None:
    store = open_store(make_settings())
    with pytest.raises(ValueError, match="unknown interval '7s'"):
        queries.candles(store, "BTCUSDT", interval="7s")
    with pytest.raises(StoreError, match="unsupported ClickHouse URL scheme 'mysql'"):
        open_store(make_settings(clickhouse_url="mysql://x"))
    with pytest.raises(StoreError, match="one data directory per process"):
        open_store(make_settings(clickhouse_url="chdb:///tmp/another-chdb-dir"))
