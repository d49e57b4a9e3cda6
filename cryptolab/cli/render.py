"""Text renderings of query results (CSV, JSON, table) for the CLI."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import orjson
import pandas as pd

from cryptolab.model import CANDLE_COLUMNS


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def candle_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{col: _cell(row[col]) for col in CANDLE_COLUMNS} for row in frame.to_dict("records")]


def render_candles(frame: pd.DataFrame, fmt: str) -> str:
    records = candle_records(frame)
    if fmt == "json":
        return orjson.dumps(records, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        out = io.StringIO()
        out.write(",".join(CANDLE_COLUMNS) + "\n")
        for rec in records:
            out.write(",".join(str(rec[c]) for c in CANDLE_COLUMNS) + "\n")
        return out.getvalue()
    if not records:
        return "(no candles)\n"
    return pd.DataFrame(records, columns=list(CANDLE_COLUMNS)).to_string(index=False) + "\n"
