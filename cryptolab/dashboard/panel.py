"""The headline tiles and the pipeline panel: plain Dash components from plain values.

The pipeline panel shows whatever the ``status`` callable provides and skips what it does not:

    live, description           the banner (required)
    error                       a failure of the feed or of Spark
    kafka_lag                   messages published but not yet written to the store
    spark                       {query: {input_rps, processed_rps, batch_ms}}
    producer                    {frames, trades, dlq, send_errors}
    feed                        any counters of the live feed, e.g. reconnects, gaps, backfilled
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dash import html

from cryptolab.store.queries import Ticker

GOOD = "#26a69a"
BAD = "#ef5350"
WARN = "#f5c542"


def format_price(value: float) -> str:
    decimals = 2 if value >= 1000 else 3 if value >= 10 else 4 if value >= 1 else 6
    return f"{value:,.{decimals}f}"


def _tile(label: str, value: str, color: str | None = None, tile_id: str = "") -> html.Div:
    style = {"color": color} if color else {}
    return html.Div(
        [
            html.Div(label, className="tile-label"),
            html.Div(value, className="tile-value", style=style),
        ],
        className="tile",
        id=tile_id or f"tile-{label.split()[0].lower()}",
    )


def tiles(ticker: Ticker | None, symbol: str) -> list[html.Div]:
    """Last price, 24 h change and trades/s of ``symbol`` (dashes when it has no candles)."""
    if ticker is None:
        return [
            _tile("last price", "—", tile_id="tile-last"),
            _tile("24 h change", "—", tile_id="tile-change"),
            _tile("trades / s", "—", tile_id="tile-tps"),
        ]
    change, color = "—", None
    if ticker.change_pct is not None:
        rounded = round(ticker.change_pct, 2)
        change = f"{rounded:+.2f} %" if rounded else "0.00 %"
        color = GOOD if rounded > 0 else BAD if rounded < 0 else None
    since = ticker.newest - ticker.change_since
    label = (
        "24 h change" if since.total_seconds() >= 86_400 else _since_label(since.total_seconds())
    )
    return [
        _tile(f"last price {symbol[:20]}", format_price(ticker.last), tile_id="tile-last"),
        _tile(label, change, color, tile_id="tile-change"),
        _tile("trades / s", f"{ticker.trades_per_s:,.1f}", tile_id="tile-tps"),
    ]


def _since_label(seconds: float) -> str:
    if seconds >= 3600:
        return f"change ({seconds / 3600:.1f} h of data)"
    return f"change ({seconds / 60:.0f} min of data)"


def _cell(label: str, value: str, color: str | None = None) -> html.Div:
    return html.Div(
        [html.Span(label, className="cell-label"), html.Span(value, className="cell-value")],
        className="cell",
        style={"borderColor": color} if color else {},
        id="metric-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-"),
    )


def _number(value: Any, digits: int = 0) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,.{digits}f}"


def freshness_cell(newest: datetime | None, now: datetime | None = None) -> html.Div:
    if newest is None:
        return _cell("freshness", "no trades yet", WARN)
    age = ((now or datetime.now(UTC)) - newest).total_seconds()
    color = GOOD if age < 5 else WARN if age < 60 else BAD
    return _cell("freshness", _age(age), color)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.0f} d"


def pipeline_cells(status: Mapping[str, Any]) -> list[html.Div]:
    """Kafka lag, Spark rates, producer and feed counters: whichever ``status`` has."""
    cells: list[html.Div] = []
    if status.get("error"):
        cells.append(_cell("error", str(status["error"])[:200], BAD))
    lag = status.get("kafka_lag")
    if isinstance(lag, int | float):
        cells.append(_cell("kafka lag", f"{_number(lag)} msgs", GOOD if lag < 1000 else WARN))
    spark = status.get("spark")
    if isinstance(spark, Mapping):
        for name, rates in spark.items():
            if not isinstance(rates, Mapping):
                continue
            text = (
                f"in {_number(rates.get('input_rps', 0), 1)}/s · "
                f"done {_number(rates.get('processed_rps', 0), 1)}/s · "
                f"batch {_number(rates.get('batch_ms', 0))} ms"
            )
            cells.append(_cell(f"spark {name}", text))
    for group in ("producer", "feed"):
        counters = status.get(group)
        if isinstance(counters, Mapping):
            for key, value in counters.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    bad = key in ("dlq", "send_errors", "gaps") and value > 0
                    cells.append(_cell(f"{group} {key}", _number(value), WARN if bad else None))
    return cells


def chart_stats(query_ms: float, rows: int, update: str) -> str:
    """What the last chart refresh cost: query time, rows read, patch or full redraw.

    Plain text: it travels with every live tick, so it stays a few dozen bytes.
    """
    return f"query {query_ms:.1f} ms · {rows:,} row{'' if rows == 1 else 's'} · {update}"
