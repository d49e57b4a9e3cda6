"""DDL of the store. Idempotent: run at every start."""

from __future__ import annotations

from cryptolab.store.client import Store

TRADES = "trades"
CANDLES_10S = "candles_10s"


def _ddl(store: Store) -> list[str]:
    trades, candles = store.table(TRADES), store.table(CANDLES_10S)
    return [
        f"CREATE DATABASE IF NOT EXISTS `{store.database}`",
        # Raw trades, deduplicated by (symbol, trade_id): read with FINAL for exact answers.
        f"""CREATE TABLE IF NOT EXISTS {trades} (
            symbol LowCardinality(String),
            trade_id UInt64,
            price Decimal(18, 8),
            qty Decimal(18, 8),
            trade_time DateTime64(3, 'UTC'),
            event_time DateTime64(3, 'UTC'),
            is_buyer_maker Bool,
            ingest_time DateTime64(3, 'UTC'),
            stored_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toDate(trade_time)
        ORDER BY (symbol, trade_id)""",
        # 10 s candles: each streaming update replaces the previous row of the same window.
        f"""CREATE TABLE IF NOT EXISTS {candles} (
            symbol LowCardinality(String),
            window_start DateTime64(3, 'UTC'),
            window_end DateTime64(3, 'UTC'),
            open Decimal(18, 8),
            high Decimal(18, 8),
            low Decimal(18, 8),
            close Decimal(18, 8),
            volume Decimal(38, 8),
            quote_volume Decimal(38, 16),
            vwap Float64,
            trades UInt64,
            buy_volume Decimal(38, 8),
            first_trade_id UInt64,
            last_trade_id UInt64,
            updated_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(updated_at)
        PARTITION BY toDate(window_start)
        ORDER BY (symbol, window_start)""",
    ]


def ensure_schema(store: Store) -> None:
    for statement in _ddl(store):
        store.command(statement)
