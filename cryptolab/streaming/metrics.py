"""Record every micro-batch's progress of our streaming queries in ``pipeline_metrics``.

A StreamingQueryListener runs in the driver; each progress report becomes one row: input rate,
processing rate, batch duration, watermark, rows dropped as late, state size. Rows are written
at most once per second (ClickHouse wants few, larger INSERTs); what is held back is written
with the next report, when a query idles or stops, and by :meth:`MetricsRecorder.flush`.

Spark delivers progress events to listeners asynchronously, after the query has already
published the same progress as ``lastProgress``: a job stopped right after it caught up would
lose the events still queued for the listener. ``flush(queries)`` also records, from each
query's own ``recentProgress``, every batch the listener has not recorded yet; the job calls it
when it stops, before removing the listener. Each (run, batch) is recorded once.

The query is stateless (the sink keeps the candles' state in the store), so the late rows are
the sink's count for that batch (``late``), and the state size is 0.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime
from typing import Any

import pyarrow as pa
from pyspark.sql.streaming import StreamingQueryListener

from cryptolab.store.client import Store
from cryptolab.store.schema import PIPELINE_METRICS

log = logging.getLogger(__name__)


def _ms(text: str | None) -> int | None:
    if not text:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def progress_row(progress: dict[str, Any], late: int = 0) -> dict[str, Any]:
    """One pipeline_metrics row from a StreamingQueryProgress (as its JSON dict); ``late``: the
    rows the sink left out of the candles as late, besides any Spark operator dropped."""
    operators = progress.get("stateOperators") or []
    return {
        "query": progress.get("name") or "",
        "run_id": str(progress.get("runId", "")),
        "batch_id": int(progress.get("batchId", -1)),
        "ts": _ms(progress.get("timestamp")),
        "input_rows": int(progress.get("numInputRows") or 0),
        "input_rows_per_second": float(progress.get("inputRowsPerSecond") or 0.0),
        "processed_rows_per_second": float(progress.get("processedRowsPerSecond") or 0.0),
        "batch_duration_ms": int(progress.get("batchDuration") or 0),
        "watermark": _ms((progress.get("eventTime") or {}).get("watermark")),
        "rows_dropped_by_watermark": late
        + sum(int(op.get("numRowsDroppedByWatermark") or 0) for op in operators),
        "state_rows": sum(int(op.get("numRowsTotal") or 0) for op in operators),
    }


_SCHEMA = pa.schema(
    [
        ("query", pa.string()),
        ("run_id", pa.string()),
        ("batch_id", pa.int64()),
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("input_rows", pa.uint64()),
        ("input_rows_per_second", pa.float64()),
        ("processed_rows_per_second", pa.float64()),
        ("batch_duration_ms", pa.uint64()),
        ("watermark", pa.timestamp("ms", tz="UTC")),
        ("rows_dropped_by_watermark", pa.uint64()),
        ("state_rows", pa.uint64()),
    ]
)


class MetricsRecorder(StreamingQueryListener):
    """Writes the progress of the named queries to the store; never breaks the stream."""

    def __init__(
        self,
        store: Store,
        query_names: set[str],
        late: dict[int, int] | None = None,
        every_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.query_names = query_names
        self.late = late if late is not None else {}  # batch id -> late rows (the sink's)
        self.every_seconds = every_seconds
        self.dropped_late = 0
        self._rows: list[dict[str, Any]] = []
        self._last_insert = float("-inf")
        self._lock = threading.Lock()
        self._last_batch: dict[str, int] = {}  # run id -> last batch id taken

    def record(self, progress: dict[str, Any], write: bool = True) -> bool:
        """Take one progress report (a StreamingQueryProgress as its JSON dict) unless it is
        another query's or its batch is already taken; True when a row was taken. Rows are
        written at most once per ``every_seconds`` (never here when ``write`` is false).

        A query's progress reports come in batch order (from the listener and from
        ``recentProgress`` alike), so a batch id at or below the run's last taken one has
        been taken already."""
        if progress.get("name") not in self.query_names:
            return False
        with self._lock:
            run, batch = str(progress.get("runId") or ""), int(progress.get("batchId", -1))
            if batch <= self._last_batch.get(run, -1):
                return False
            row = progress_row(progress, self.late.pop(batch, 0))
            self._last_batch[row["run_id"]] = row["batch_id"]
            self.dropped_late += row["rows_dropped_by_watermark"]
            self._rows.append(row)
            due = time.monotonic() - self._last_insert >= self.every_seconds
        if due and write:
            self.flush()
        return True

    def flush(self, queries: list[Any] | None = None) -> int:
        """Write the rows held back (one INSERT), first taking what the listener has not
        delivered yet of each stopped query's ``recentProgress``; a failure is logged, never
        raised. Returns the number of progress reports taken from ``queries``."""
        taken = 0
        for query in queries or []:
            try:
                for progress in query.recentProgress:
                    taken += self.record(json.loads(progress.json), write=False)
            except Exception as exc:  # same rule as the listener: never break the stop
                log.warning("recording the last streaming progress failed error=%r", exc)
        if taken:
            log.debug("recorded %d progress reports the listener had not delivered", taken)
        with self._lock:
            rows, self._rows = self._rows, []
            if rows:
                self._last_insert = time.monotonic()
        if rows:
            try:
                self.store.insert_arrow(PIPELINE_METRICS, pa.Table.from_pylist(rows, _SCHEMA))
            except Exception as exc:
                log.warning("recording streaming progress failed rows=%d error=%r", len(rows), exc)
        return taken

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        try:
            self.record(json.loads(event.progress.json))
        except Exception as exc:  # a metrics failure must not stop the pipeline; say so loudly
            log.warning("recording streaming progress failed error=%r", exc)

    def onQueryIdle(self, event: Any) -> None:
        self.flush()

    def onQueryTerminated(self, event: Any) -> None:
        self.flush()
