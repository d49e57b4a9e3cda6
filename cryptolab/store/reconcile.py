"""Reconciliation: re-derive 10 s candles from the raw trades and correct the ones that differ.

Streaming candles can miss trades that arrive after the watermark (they are still stored in
``trades``). Reconciling recomputes every window in a time range from ``trades FINAL`` — the
same definition as the stream: open/close by (trade_time, trade_id) — compares the exact
fields with ``candles_10s FINAL`` and writes a corrected row for every window that differs
(or is missing). It is idempotent: a second run changes nothing. The comparison and the write
stay inside ClickHouse (a scratch Memory table), so a day of a busy symbol (8,640 windows,
millions of trades) reconciles in well under a second.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cryptolab.model import WINDOW_SECONDS
from cryptolab.store.client import Store
from cryptolab.store.schema import CANDLES_10S, OHLCV_FROM_TRADES, TRADE_KEY, TRADES, TS
from cryptolab.times import END_OF_TIME, to_utc

log = logging.getLogger(__name__)

CANDLE_ROW = (
    "symbol", "window_start", "window_end", "open", "high", "low", "close", "volume",
    "quote_volume", "vwap", "trades", "buy_volume", "first_trade_id", "last_trade_id",
)  # fmt: skip
"""The columns of a ``candles_10s`` row a reconcile writes (``updated_at`` besides)."""
COMPARED = (
    "open", "high", "low", "close", "volume", "quote_volume", "trades", "buy_volume",
    "first_trade_id", "last_trade_id",
)  # fmt: skip


@dataclass(frozen=True)
class ChangedWindow:
    symbol: str
    window_start: datetime
    trades_before: int  # 0 when the window was missing
    trades_after: int


@dataclass
class ReconcileReport:
    start: datetime
    end: datetime
    windows_checked: int = 0
    changed: list[ChangedWindow] = field(default_factory=list)  # empty unless details asked
    windows_changed: int = 0
    seconds: float = 0.0
    dry_run: bool = False  # the changed windows were found, not written

    def describe(self) -> str:
        verb, changed = (
            ("checked (dry run)", "would change") if self.dry_run else ("reconciled", "changed")
        )
        lines = [
            f"{verb} {self.start.isoformat()} .. {self.end.isoformat()}: "
            f"{self.windows_checked} windows checked, {self.windows_changed} {changed} "
            f"in {self.seconds:.2f} s"
        ]
        lines += [
            f"  {c.symbol} {c.window_start.isoformat()} trades "
            f"{c.trades_before} -> {c.trades_after}"
            for c in self.changed
        ]
        return "\n".join(lines)


def _recomputed_sql(store: Store, symbols: bool = False, final: bool = True) -> str:
    """Candles from raw trades in [start, end), with the stored row (if any) beside them;
    ``symbols``: only those of the ``symbols`` parameter.

    A trade stored twice counts once. ``final``: the copy ``FINAL`` keeps (the last written,
    what every reader of ``trades FINAL`` sees: the authoritative answer). Otherwise the range
    is deduplicated with ``LIMIT 1 BY symbol, trade_id`` (a copy; a repeat is the same trade),
    which reads the range once where ``FINAL`` merges every part it touches: ~4x less CPU for
    one second of a 2,000-symbol market; the streaming sink uses it, the reconcile does not."""
    order = TRADE_KEY
    which = "AND symbol IN {symbols:Array(String)}" if symbols else ""
    source = f"{store.table(TRADES)} FINAL" if final else f"{store.table(TRADES)}"
    dedup = "" if final else "LIMIT 1 BY symbol, trade_id"
    return f"""
    WITH fresh AS (
        SELECT symbol,
               CAST(toStartOfInterval(trade_time, INTERVAL {WINDOW_SECONDS} SECOND) AS {TS})
                   AS window_start,
               window_start + INTERVAL {WINDOW_SECONDS} SECOND AS window_end,
               {OHLCV_FROM_TRADES},
               argMin(trade_id, {order}) AS first_trade_id,
               argMax(trade_id, {order}) AS last_trade_id
        FROM (
            SELECT symbol, trade_id, price, qty, trade_time, is_buyer_maker
            FROM {source}
            WHERE trade_time >= {{start:{TS}}} AND trade_time < {{end:{TS}}} {which}
            {dedup}
        )
        GROUP BY symbol, window_start
    ),
    stored AS (
        SELECT * FROM {store.table(CANDLES_10S)} FINAL
        WHERE window_start >= {{start:{TS}}} AND window_start < {{end:{TS}}} {which}
    )
    SELECT fresh.*, stored.trades AS stored_trades,
           ({" OR ".join(f"fresh.{c} != stored.{c}" for c in COMPARED)}) OR stored.symbol = ''
               AS differs
    FROM fresh LEFT JOIN stored
      ON fresh.symbol = stored.symbol AND fresh.window_start = stored.window_start
    SETTINGS join_use_nulls = 0
    """  # noqa: S608 - identifiers and constants only; times are bound parameters


def differing_candles(
    store: Store,
    start: datetime,
    end: datetime,
    symbols: Sequence[str] | None = None,
    final: bool = True,
) -> tuple[int, pa.Table]:
    """Recompute the candles of ``[start, end)`` (``symbols`` only, when given) from the raw
    trades: (windows recomputed, the rows that differ from the stored ones, ready to insert:
    ``updated_at`` now, ``stored_trades`` = the stored row's count, 0 if there was none).
    ``final``: see :func:`_recomputed_sql`."""
    params: dict[str, Any] = {"start": start, "end": end}
    if symbols is not None:
        params["symbols"] = list(symbols)
    table = store.query_arrow(_recomputed_sql(store, symbols is not None, final), params)
    changed = table.filter(pc.cast(table["differs"], pa.bool_())) if table.num_rows else table
    now = int(time.time() * 1000)
    rows = changed.drop_columns(["differs"]).append_column(
        "updated_at", pa.array([now] * changed.num_rows, pa.timestamp("ms", tz="UTC"))
    )
    return table.num_rows, rows


def reconcile(
    store: Store,
    start: datetime,
    end: datetime | None = None,
    details: bool = True,
    symbols: Sequence[str] | None = None,
    write: bool = True,
) -> ReconcileReport:
    """Correct every 10 s candle with ``start <= window_start < end`` from the raw trades (of
    ``symbols`` only, when given). ``details``: list every changed window in the report (else
    only their number). ``write=False``: only report the windows that differ (a dry run; works
    on a read-only store, so it reads the comparison twice instead of keeping a scratch table)."""
    end = end or END_OF_TIME
    start = _floor(start)
    report = ReconcileReport(start, end, dry_run=not write)
    started = time.perf_counter()
    params: dict[str, object] = {"start": start, "end": end}
    if symbols is not None:
        params["symbols"] = list(symbols)
    recomputed = _recomputed_sql(store, symbols is not None)
    if write:
        scratch = store.table(f"reconcile_{uuid.uuid4().hex[:16]}")
        store.command(f"CREATE TABLE {scratch} ENGINE = Memory AS {recomputed}", params)
        source, source_params = scratch, None
    else:
        source, source_params = f"({recomputed})", params
    try:
        checked, changed = store.query_rows(
            f"SELECT count(), countIf(differs) FROM {source}",  # noqa: S608 - no user text
            source_params,
        )[0]
        report.windows_checked, report.windows_changed = int(checked), int(changed)
        if changed and write:
            _write(store, source)
        if changed and details:
            rows = store.query_rows(
                f"SELECT symbol, window_start, stored_trades, trades FROM {source} "  # noqa: S608
                "WHERE differs ORDER BY symbol, window_start",
                source_params,
            )
            report.changed = [
                ChangedWindow(str(s), to_utc(w), int(before), int(after))
                for s, w, before, after in rows
            ]
    finally:
        if write:
            store.command(f"DROP TABLE IF EXISTS {source}")
    report.seconds = time.perf_counter() - started
    log.info(
        "reconcile start=%s windows=%d changed=%d seconds=%.2f",
        start.isoformat(), report.windows_checked, report.windows_changed, report.seconds,
    )  # fmt: skip
    return report


def _write(store: Store, scratch: str) -> None:
    """The changed windows of ``scratch`` -> ``candles_10s``, stamped now (they replace the
    stored rows: the table keeps the latest ``updated_at``)."""
    columns = ", ".join(f"`{c}`" for c in CANDLE_ROW)
    store.command(
        f"INSERT INTO {store.table(CANDLES_10S)} ({columns}, updated_at) "  # noqa: S608
        f"SELECT {columns}, now64(3) FROM {scratch} WHERE differs"
    )


def _floor(moment: datetime) -> datetime:
    seconds = int(to_utc(moment).timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS
    return datetime.fromtimestamp(seconds, tz=UTC)


def closed_horizon(store: Store, margin_seconds: float) -> datetime | None:
    """Windows ending before this instant are closed: no streaming update will touch them."""
    rows = store.query_rows(f"SELECT max(trade_time), count() FROM {store.table(TRADES)}")  # noqa: S608
    if not rows or not rows[0][1]:
        return None
    newest = to_utc(rows[0][0])
    return _floor(datetime.fromtimestamp(newest.timestamp() - margin_seconds, tz=UTC))


def touched_since(store: Store, stored_after: datetime) -> datetime | None:
    """Earliest trade time among trades stored after ``stored_after`` (what a run touched)."""
    rows = store.query_rows(
        f"SELECT min(trade_time), count() FROM {store.table(TRADES)} "  # noqa: S608
        f"WHERE stored_at >= {{after:{TS}}}",
        {"after": stored_after},
    )
    if not rows or not rows[0][1]:
        return None
    return to_utc(rows[0][0])
