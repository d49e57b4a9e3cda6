"""foreachBatch sinks: micro-batch DataFrame -> Arrow -> ClickHouse, safe to repeat.

Runs on a thread of the driver process, so the in-process chDB store works here. Every insert
carries ``insert_deduplication_token = <query id>:<batch id>:<table>``: when Spark re-runs a
micro-batch after a crash (same query id, same batch id, same rows), ClickHouse drops the
repeat. The query id lives in the checkpoint, so a fresh checkpoint never collides with old
tokens.

A failed insert (store down, disk full) is retried with the same token for up to
``retry_seconds`` before the micro-batch fails; meanwhile Kafka holds the backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cryptolab.errors import StoreError
from cryptolab.model import TRADE_COLUMNS
from cryptolab.store.client import Store, masked_url
from cryptolab.store.schema import CANDLES_10S, QUARANTINE, TRADE_TIMES, TRADES

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS = ["topic", "partition", "offset", "raw", "reason", "kafka_time"]


def _utc_ms(column: Any) -> Any:
    return column.cast(pa.timestamp("ms", tz="UTC"))


def _utc_us(column: Any) -> Any:
    return column.cast(pa.timestamp("us", tz="UTC"))


def _set(table: pa.Table, name: str, column: Any) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, column)


def candles_table(table: pa.Table, updated_at_ms: int) -> pa.Table:
    """Add vwap and updated_at to a Spark candle batch and normalise timestamps."""
    quote = pc.cast(table["quote_volume"], pa.float64())
    volume = pc.cast(table["volume"], pa.float64())
    table = table.append_column("vwap", pc.divide(quote, volume))
    for name in ("window_start", "window_end"):
        table = _set(table, name, _utc_ms(table[name]))
    stamp = pa.array([updated_at_ms] * table.num_rows, pa.timestamp("ms", tz="UTC"))
    return table.append_column("updated_at", stamp)


def split_trades(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """A parsed Kafka batch -> (valid trades, quarantined rows with their reason)."""
    valid_mask = pc.is_null(table["reason"])
    valid = table.filter(valid_mask).select(list(TRADE_COLUMNS))
    for name in TRADE_TIMES:  # microseconds, as the source gave them
        valid = _set(valid, name, _utc_us(valid[name]))
    bad = table.filter(pc.invert(valid_mask)).select(QUARANTINE_COLUMNS)
    bad = _set(bad, "kafka_time", _utc_ms(bad["kafka_time"]))
    return valid, bad


def _hint(error: str) -> str:
    text = error.lower()
    if "not_enough_space" in text or "no space left" in text:
        return "the disk holding the ClickHouse data is full: free space there"
    if "read-only" in text or "permission denied" in text or "readonly" in text:
        return "the ClickHouse data dir is not writable: fix its permissions or mount"
    return "check that the ClickHouse store is up and reachable"


class StoreSink:
    """The foreachBatch callbacks of :class:`cryptolab.streaming.job.StreamingJob`."""

    def __init__(self, store: Store, retry_seconds: float = 300.0) -> None:
        self.store = store
        self.retry_seconds = retry_seconds
        self.quarantined = 0
        self.stored = 0  # valid trades written (a batch Spark re-runs counts again)
        self.write_retries = 0
        self.failure: StoreError | None = None  # set when a write gave up; the stack reports it
        self._query_ids: dict[str, str] = {}
        self._bound = threading.Condition()

    def bind(self, name: str, query_id: str) -> None:
        """Tell the sink the (checkpoint-stable) id of the query writing through ``name``."""
        with self._bound:
            self._query_ids[name] = query_id
            self._bound.notify_all()

    def _token(self, name: str, batch_id: int, table: str) -> str:
        with self._bound:
            if not self._bound.wait_for(lambda: name in self._query_ids, timeout=60):
                raise RuntimeError(f"streaming query {name!r} was never bound to the sink")
            return f"{self._query_ids[name]}:{batch_id}:{table}"

    def _insert(self, name: str, batch_id: int, table_name: str, table: pa.Table) -> None:
        """Insert, retrying with the same dedup token (a repeat that did land is dropped)."""
        settings = {"insert_deduplication_token": self._token(name, batch_id, table_name)}
        deadline = time.monotonic() + self.retry_seconds
        delay, attempt = 0.5, 0
        while True:
            try:
                self.store.insert_arrow(table_name, table, settings=settings)
            except Exception as exc:
                attempt += 1
                error = str(exc).splitlines()[0][:300] if str(exc) else repr(exc)
                if time.monotonic() + delay > deadline:
                    self.failure = StoreError(
                        f"cannot write {table_name} (batch {batch_id}) to ClickHouse at "
                        f"{masked_url(self.store.url)}: still failing after {attempt} attempts "
                        f"in {self.retry_seconds:.0f} s ({error}); {_hint(error)}. Nothing is "
                        "lost: restart once fixed and the stream resumes from its checkpoint "
                        "(`cryptolab stream --until-caught-up` stores what Kafka holds, then "
                        "exits)."
                    )
                    log.error("%s", self.failure)
                    raise self.failure from exc
                self.write_retries += 1
                log.warning(
                    "store write failed table=%s batch=%s attempt=%d retry_in=%.1fs error=%s",
                    table_name, batch_id, attempt, delay, error,
                )  # fmt: skip
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if attempt:
                log.warning(
                    "store write recovered table=%s batch=%s after %d failed attempts",
                    table_name, batch_id, attempt,
                )  # fmt: skip
            return

    def write_trades(self, batch: Any, batch_id: int) -> None:
        valid, bad = split_trades(batch.toArrow())
        self._insert("trades", batch_id, TRADES, valid)
        self.stored += valid.num_rows
        if bad.num_rows:
            self._insert("trades", batch_id, QUARANTINE, bad)
            self.quarantined += bad.num_rows
            log.warning("quarantined rows=%d batch=%s", bad.num_rows, batch_id)
        log.debug("trades batch=%s rows=%s", batch_id, valid.num_rows)

    def write_candles(self, batch: Any, batch_id: int) -> None:
        table = batch.toArrow()
        if table.num_rows:
            rows = candles_table(table, int(time.time() * 1000))
            self._insert("candles", batch_id, CANDLES_10S, rows)
        log.debug("candles batch=%s rows=%s", batch_id, table.num_rows)
