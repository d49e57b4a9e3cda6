"""Record every micro-batch's progress of our streaming queries in ``pipeline_metrics``.

A StreamingQueryListener runs in the driver; each progress report becomes one row: input rate,
processing rate, batch duration, watermark, rows dropped as late, state size.

Spark delivers progress events to listeners asynchronously, after the query has already
published the same progress as ``lastProgress``: a job stopped right after it caught up would
lose the events still queued for the listener. :meth:`MetricsRecorder.flush` records, from each
query's own ``recentProgress``, every batch the listener has not recorded yet; the job calls it
when it stops, before removing the listener. Each (run, batch) is recorded once.
"""

from __future__ import annotations

import json
import logging
import threading
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


def progress_row(progress: dict[str, Any]) -> dict[str, Any]:
    """One pipeline_metrics row from a StreamingQueryProgress (as its JSON dict)."""
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
        "rows_dropped_by_watermark": sum(
            int(op.get("numRowsDroppedByWatermark") or 0) for op in operators
        ),
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

    def __init__(self, store: Store, query_names: set[str]) -> None:
        self.store = store
        self.query_names = query_names
        self.dropped_late = 0
        self._lock = threading.Lock()
        self._last_batch: dict[str, int] = {}  # run id -> last batch id recorded

    def record(self, progress: dict[str, Any]) -> bool:
        """Record one progress report (a StreamingQueryProgress as its JSON dict) unless it is
        another query's or its batch is already recorded; True when a row was written.

        A query's progress reports come in batch order (from the listener and from
        ``recentProgress`` alike), so a batch id at or below the run's last recorded one has
        been recorded already."""
        if progress.get("name") not in self.query_names:
            return False
        row = progress_row(progress)
        with self._lock:
            if row["batch_id"] <= self._last_batch.get(row["run_id"], -1):
                return False
            self.store.insert_arrow(PIPELINE_METRICS, pa.Table.from_pylist([row], _SCHEMA))
            self._last_batch[row["run_id"]] = row["batch_id"]
            self.dropped_late += row["rows_dropped_by_watermark"]
        return True

    def flush(self, queries: list[Any]) -> int:
        """Record what the listener has not yet of each query's ``recentProgress`` (call once
        the queries are stopped); return the number of rows written."""
        written = 0
        for query in queries:
            try:
                for progress in query.recentProgress:
                    written += self.record(json.loads(progress.json))
            except Exception as exc:  # same rule as the listener: never break the stop
                log.warning("recording the last streaming progress failed error=%r", exc)
        if written:
            log.debug("recorded %d progress reports the listener had not delivered", written)
        return written

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        try:
            self.record(json.loads(event.progress.json))
        except Exception as exc:  # a metrics failure must not stop the pipeline; say so loudly
            log.warning("recording streaming progress failed error=%r", exc)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass
