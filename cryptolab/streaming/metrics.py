"""Record every micro-batch's progress of our streaming queries in ``pipeline_metrics``.

A StreamingQueryListener runs in the driver; each progress report becomes one row: input rate,
processing rate, batch duration, watermark, rows dropped as late, state size. The query is
stateless (the sink keeps the candles' state in the store), so the late rows are the sink's count
for that batch (``late``), and the state size is 0.
"""

from __future__ import annotations

import json
import logging
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
        self, store: Store, query_names: set[str], late: dict[int, int] | None = None
    ) -> None:
        self.store = store
        self.query_names = query_names
        self.late = late if late is not None else {}  # batch id -> late rows (the sink's)
        self.recorded: dict[str, int] = {}  # query name -> newest batch id recorded
        self.dropped_late = 0

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        try:
            progress = json.loads(event.progress.json)
            if progress.get("name") not in self.query_names:
                return
            batch = int(progress.get("batchId", -1))
            row = progress_row(progress, self.late.pop(batch, 0))
            self.dropped_late += row["rows_dropped_by_watermark"]
            self.store.insert_arrow(PIPELINE_METRICS, pa.Table.from_pylist([row], _SCHEMA))
            self.recorded[row["query"]] = max(self.recorded.get(row["query"], -1), batch)
        except Exception as exc:  # a metrics failure must not stop the pipeline; say so loudly
            log.warning("recording streaming progress failed error=%r", exc)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass
