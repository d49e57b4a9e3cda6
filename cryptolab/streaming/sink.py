"""foreachBatch sinks: micro-batch DataFrame -> Arrow -> ClickHouse.

Runs on a thread of the driver process, so the in-process chDB store works here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cryptolab.store.client import Store
from cryptolab.store.schema import CANDLES_10S, TRADES

log = logging.getLogger(__name__)


def _utc_ms(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(pa.timestamp("ms", tz="UTC"))


def candles_table(table: pa.Table, updated_at_ms: int) -> pa.Table:
    """Add vwap and updated_at to a Spark candle batch and normalise timestamps."""
    quote = pc.cast(table["quote_volume"], pa.float64())
    volume = pc.cast(table["volume"], pa.float64())
    table = table.append_column("vwap", pc.divide(quote, volume))
    for name in ("window_start", "window_end"):
        table = table.set_column(table.schema.get_field_index(name), name, _utc_ms(table[name]))
    stamp = pa.array([updated_at_ms] * table.num_rows, pa.timestamp("ms", tz="UTC"))
    return table.append_column("updated_at", stamp)


def trades_table(table: pa.Table) -> pa.Table:
    for name in ("trade_time", "event_time", "ingest_time"):
        table = table.set_column(table.schema.get_field_index(name), name, _utc_ms(table[name]))
    return table


class StoreSink:
    """The two foreachBatch callbacks of :class:`cryptolab.streaming.job.StreamingJob`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write_trades(self, batch: Any, batch_id: int) -> None:
        table = batch.toArrow()
        self.store.insert_arrow(TRADES, trades_table(table))
        log.debug("trades batch=%s rows=%s", batch_id, table.num_rows)

    def write_candles(self, batch: Any, batch_id: int) -> None:
        table = batch.toArrow()
        if table.num_rows:
            self.store.insert_arrow(CANDLES_10S, candles_table(table, int(time.time() * 1000)))
        log.debug("candles batch=%s rows=%s", batch_id, table.num_rows)
