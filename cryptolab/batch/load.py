"""Batch loading: a tape straight into the store, no Kafka or Spark (notebooks, reports, tests).

Each frame goes through the same parser as the live producer (:func:`cryptolab.model.parse_frame`).
Trades land in ``trades``; frames the parser rejects land in ``quarantine`` with the reason,
keyed by ``topic = "tape:<file name>"`` and ``offset = <line number>`` (``kafka_time`` is the
arrival time of the frame before them), so loading the same tape twice changes nothing. Then
:func:`cryptolab.store.reconcile.reconcile` derives the 10 s candles from the raw trades: the
same candles the streaming job writes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from cryptolab.errors import FrameError, TapeError
from cryptolab.feeds.tapes.tape import read_frames
from cryptolab.model import Trade, now_us, parse_frame
from cryptolab.store.client import Store
from cryptolab.store.reconcile import ReconcileReport, reconcile
from cryptolab.store.schema import QUARANTINE, TRADES
from cryptolab.times import from_micros

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000
_TS = pa.timestamp("ms", tz="UTC")
_TS_US = pa.timestamp("us", tz="UTC")
_DECIMAL = pa.decimal128(18, 8)


@dataclass
class LoadReport:
    """What a batch load did."""

    tape: str
    frames: int = 0
    trades: int = 0  # distinct (symbol, trade_id)
    duplicates: int = 0  # frames repeating a trade already on the tape
    rejected: Counter[str] = field(default_factory=Counter)
    first_trade: datetime | None = None
    last_trade: datetime | None = None
    reconcile: ReconcileReport | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        span = (
            f"{self.first_trade:%Y-%m-%d %H:%M:%S} .. {self.last_trade:%Y-%m-%d %H:%M:%S} UTC"
            if self.first_trade and self.last_trade
            else "no trades"
        )
        windows = self.reconcile.windows_checked if self.reconcile else 0
        return (
            f"loaded {self.tape}: {self.frames} frames, {self.trades} trades ({span}), "
            f"{self.duplicates} duplicates, {sum(self.rejected.values())} rejected, "
            f"{windows} candle windows"
        )


def _trades_table(trades: list[Trade]) -> pa.Table:
    return pa.table(
        {
            "symbol": [t.symbol for t in trades],
            "trade_id": pa.array([t.trade_id for t in trades], pa.uint64()),
            "price": pa.array([Decimal(t.price) for t in trades], _DECIMAL),
            "qty": pa.array([Decimal(t.qty) for t in trades], _DECIMAL),
            "trade_time": pa.array([t.trade_time for t in trades], _TS_US),
            "event_time": pa.array([t.event_time for t in trades], _TS_US),
            "is_buyer_maker": [t.is_buyer_maker for t in trades],
            "ingest_time": pa.array([t.ingest_time for t in trades], _TS_US),
        }
    )


def _quarantine_table(topic: str, rows: list[tuple[int, str, str, int]]) -> pa.Table:
    return pa.table(
        {
            "topic": [topic] * len(rows),
            "partition": pa.array([0] * len(rows), pa.uint32()),
            "offset": pa.array([r[0] for r in rows], pa.uint64()),
            "raw": [r[1] for r in rows],
            "reason": [r[2] for r in rows],
            "kafka_time": pa.array([r[3] for r in rows], _TS),
        }
    )


class _Batcher:
    """Collects parsed trades and rejected lines; writes them in batches."""

    def __init__(self, store: Store, topic: str, report: LoadReport) -> None:
        self.store, self.topic, self.report = store, topic, report
        self.trades: list[Trade] = []
        self.rejected: list[tuple[int, str, str, int]] = []
        self.pending: list[tuple[int, str, str]] = []  # rejected before any arrival time is known
        self.clock = 0  # arrival time (ms) of the latest frame that had one
        self.seen: set[tuple[str, int]] = set()
        self.first_us: int | None = None
        self.last_us: int | None = None

    def add(self, line_no: int, frame: str, ingest_us: int) -> None:
        self.report.frames += 1
        try:
            trade = parse_frame(frame, ingest_time=ingest_us)
        except FrameError as exc:
            self.report.rejected[exc.reason] += 1
            if self.clock:
                self.rejected.append((line_no, frame, exc.reason, self.clock))
            else:
                self.pending.append((line_no, frame, exc.reason))
            return
        self.clock = max(self.clock, trade.event_time // 1000)
        if self.pending:
            self.rejected += [(n, f, r, self.clock) for n, f, r in self.pending]
            self.pending.clear()
        key = (trade.symbol, trade.trade_id)
        if key in self.seen:
            self.report.duplicates += 1
            return
        self.seen.add(key)
        self.trades.append(trade)
        self.report.trades += 1
        self.first_us = min(self.first_us or trade.trade_time, trade.trade_time)
        self.last_us = max(self.last_us or trade.trade_time, trade.trade_time)
        if len(self.trades) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.trades:
            self.store.insert_arrow(TRADES, _trades_table(self.trades))
            self.trades = []
        rows = self.rejected + [(n, f, r, 0) for n, f, r in self.pending]
        if rows:
            self.store.insert_arrow(QUARANTINE, _quarantine_table(self.topic, rows))
            self.rejected, self.pending = [], []


def load_frames(store: Store, frames: Iterable[str], name: str) -> LoadReport:
    """Parse ``frames`` (raw combined-stream text), store trades and rejects, build candles."""
    started = time.perf_counter()
    report = LoadReport(name)
    batcher = _Batcher(store, f"tape:{name}", report)
    ingest_us = now_us()
    for line_no, frame in enumerate(frames):
        batcher.add(line_no, frame, ingest_us)
    batcher.flush()
    if batcher.first_us is not None and batcher.last_us is not None:
        report.first_trade = from_micros(batcher.first_us)
        report.last_trade = from_micros(batcher.last_us)
        # every window the tape touched, whatever else the store holds
        end = report.last_trade + timedelta(seconds=10)
        report.reconcile = reconcile(store, report.first_trade, end)
    report.seconds = time.perf_counter() - started
    log.info(
        "loaded tape=%s frames=%d trades=%d rejected=%d seconds=%.2f",
        name, report.frames, report.trades, sum(report.rejected.values()), report.seconds,
    )  # fmt: skip
    return report


def load_tape(store: Store, path: Path) -> LoadReport:
    """Load a tape file (``.jsonl`` or ``.jsonl.gz``) into ``store``; see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise TapeError(f"tape not found: {path} (pass a .jsonl or .jsonl.gz file)")
    return load_frames(store, read_frames(path), path.name)
