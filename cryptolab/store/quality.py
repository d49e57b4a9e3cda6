"""Data-quality read functions: what the store can tell about missing, late and rejected data.

- gaps in trade ids (Binance ids are consecutive per symbol, so a hole is a lost trade);
- late deliveries: trades whose arrival (``event_time``) trailed their ``trade_time`` by more
  than a threshold (the streaming watermark: later ones miss their streaming candle until
  reconciliation);
- trades the streaming job dropped as late (``pipeline_metrics.rows_dropped_by_watermark``);
  only exists where a streaming run recorded metrics;
- rejected records (``quarantine``), by source and reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from cryptolab.store.client import Store
from cryptolab.store.schema import PIPELINE_METRICS, QUARANTINE, TRADES, TS
from cryptolab.times import range_params


def _range(start: datetime | None, end: datetime | None, **extra: Any) -> dict[str, Any]:
    return {**range_params(start, end), **extra}


def trade_id_gaps(
    store: Store, symbol: str, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Holes in ``symbol``'s trade ids among the trades of the period. One row per hole:
    after_id, before_id (the stored ids around it), missing (ids in between), after_time,
    before_time."""
    sql = f"""
        SELECT after_id, before_id, before_id - after_id - 1 AS missing, after_time, before_time
        FROM (
            SELECT lagInFrame(trade_id) OVER w AS after_id, trade_id AS before_id,
                   lagInFrame(trade_time) OVER w AS after_time, trade_time AS before_time,
                   row_number() OVER w AS n
            FROM {store.table(TRADES)} FINAL
            WHERE symbol = {{symbol:String}}
              AND trade_time >= {{start:{TS}}} AND trade_time < {{end:{TS}}}
            WINDOW w AS (ORDER BY trade_id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
        )
        WHERE n > 1 AND before_id > after_id + 1
        ORDER BY after_id
    """  # noqa: S608 - identifiers only; values are bound parameters
    return store.query_arrow(sql, _range(start, end, symbol=symbol)).to_pandas()


def late_deliveries(
    store: Store,
    symbol: str,
    threshold_seconds: float,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Trades of the period that arrived more than ``threshold_seconds`` after they happened
    (``event_time - trade_time``): count ``late``, out of ``trades``, and the ``max_delay_s``."""
    sql = f"""
        SELECT count() AS trades,
               countIf(dateDiff('millisecond', trade_time, event_time) > {{ms:Int64}}) AS late,
               max(dateDiff('millisecond', trade_time, event_time)) / 1000 AS max_delay_s
        FROM {store.table(TRADES)} FINAL
        WHERE symbol = {{symbol:String}}
          AND trade_time >= {{start:{TS}}} AND trade_time < {{end:{TS}}}
    """  # noqa: S608 - identifiers only; values are bound parameters
    params = _range(start, end, symbol=symbol, ms=int(threshold_seconds * 1000))
    trades, late, max_delay = store.query_rows(sql, params)[0]
    return {
        "trades": int(trades),
        "late": int(late),
        "max_delay_s": float(max_delay) if trades else 0.0,
    }


def dropped_by_watermark(
    store: Store, start: datetime | None = None, end: datetime | None = None
) -> int | None:
    """Rows the streaming candles dropped as too late, summed over the micro-batches whose
    watermark lies in the period (all symbols). None when no streaming run recorded metrics
    in this store (e.g. the data was loaded in batch)."""
    sql = f"""
        SELECT count() AS batches,
               sumIf(rows_dropped_by_watermark,
                     watermark >= {{start:{TS}}} AND watermark < {{end:{TS}}}) AS dropped
        FROM {store.table(PIPELINE_METRICS)}
    """  # noqa: S608 - identifiers only; values are bound parameters
    batches, dropped = store.query_rows(sql, _range(start, end))[0]
    return int(dropped) if batches else None


def quarantined(
    store: Store, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Rejected records that arrived in the period (all symbols: a broken record may have none),
    by source (``topic``: a Kafka topic, or ``tape:<file>`` for a batch load) and reason.
    Columns: topic, reason, records."""
    sql = f"""
        SELECT topic, reason, count() AS records
        FROM {store.table(QUARANTINE)} FINAL
        WHERE kafka_time >= {{start:{TS}}} AND kafka_time < {{end:{TS}}}
        GROUP BY topic, reason ORDER BY topic, records DESC, reason
    """  # noqa: S608 - identifiers only; values are bound parameters
    return store.query_arrow(sql, _range(start, end)).to_pandas()
