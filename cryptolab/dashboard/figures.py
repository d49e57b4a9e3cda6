"""Plotly figures built from store query results (pandas DataFrames).

Trace arrays are plain JSON lists (never numpy's base64 "typed arrays") so that a live tick can
append, replace and drop single candles with a Dash ``Patch`` instead of sending a new figure.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from dash import Patch

from cryptolab.times import epoch_ms

UP = "#26a69a"
DOWN = "#ef5350"
VWAP = "#f5c542"
PAPER = "#131722"
GRID = "#262b3a"
TEXT = "#c9ced8"
HEIGHT = 600

Figure = dict[str, Any]
"""A Plotly figure as JSON-ready dicts and lists (what dcc.Graph takes)."""

# (trace index, trace field, column of `columns()`); the order of traces in candle_figure().
TRACE_FIELDS: tuple[tuple[int, str, str], ...] = (
    (0, "x", "x"),
    (0, "open", "open"),
    (0, "high", "high"),
    (0, "low", "low"),
    (0, "close", "close"),
    (1, "x", "x"),
    (1, "y", "vwap"),
    (2, "x", "x"),
    (2, "y", "buys"),
    (3, "x", "x"),
    (3, "y", "sells"),
)


def _axis(**extra: Any) -> dict[str, Any]:
    return {
        "gridcolor": GRID,
        "zerolinecolor": GRID,
        "linecolor": GRID,
        "automargin": True,
        "title": {"standoff": 10},
        **extra,
    }


def _base_layout() -> dict[str, Any]:
    return {
        "height": HEIGHT,
        "paper_bgcolor": PAPER,
        "plot_bgcolor": PAPER,
        "font": {"color": TEXT, "family": "Inter, Segoe UI, Helvetica, Arial, sans-serif"},
        "margin": {"l": 60, "r": 20, "t": 36, "b": 30},
    }


def empty_figure(message: str) -> Figure:
    """A blank chart that says why it is blank."""
    layout = _base_layout()
    layout.update(
        xaxis=_axis(visible=False),
        yaxis=_axis(visible=False),
        annotations=[
            {
                "text": html.escape(message, quote=False),  # Plotly renders some HTML tags
                "showarrow": False,
                "font": {"size": 18, "color": TEXT},
                "x": 0.5,
                "y": 0.5,
                "xref": "paper",
                "yref": "paper",
            }
        ],
        meta={"empty": message},
    )
    return {"data": [], "layout": layout}


_EPOCH = pd.Timestamp(0, tz="UTC")


def columns(candles: pd.DataFrame) -> dict[str, list[Any]]:
    """The trace arrays of ``candles`` as JSON-ready lists; times as epoch milliseconds (UTC),
    which Plotly's date axes take as they are."""
    starts = pd.to_datetime(candles["window_start"], utc=True)
    volume = candles["volume"].astype(float)
    buys = candles["buy_volume"].astype(float)
    return {
        "x": ((starts - _EPOCH) // pd.Timedelta(milliseconds=1)).astype("int64").tolist(),
        "open": candles["open"].astype(float).tolist(),
        "high": candles["high"].astype(float).tolist(),
        "low": candles["low"].astype(float).tolist(),
        "close": candles["close"].astype(float).tolist(),
        "vwap": candles["vwap"].astype(float).round(8).tolist(),
        "buys": buys.tolist(),
        "sells": (volume - buys).clip(lower=0).tolist(),
    }


def candle_figure(candles: pd.DataFrame, symbol: str, revision: str = "") -> Figure:
    """Candlesticks with VWAP on top, volume split into taker buys and sells below.

    A plain Plotly figure dict (no plotly.py objects: building those costs more than the query).
    ``revision`` keeps the user's zoom while the data refreshes (Plotly ``uirevision``).
    """
    if candles.empty:
        return empty_figure(f"No candles for {symbol[:40]!r} yet")
    cols = columns(candles)
    x = cols["x"]
    data = [
        {
            "type": "candlestick",
            "name": symbol,
            "x": x,
            "open": cols["open"],
            "high": cols["high"],
            "low": cols["low"],
            "close": cols["close"],
            "increasing": {"line": {"color": UP}, "fillcolor": UP},
            "decreasing": {"line": {"color": DOWN}, "fillcolor": DOWN},
            "xaxis": "x",
            "yaxis": "y",
        },
        {
            "type": "scatter",
            "name": "VWAP",
            "mode": "lines",
            "x": x,
            "y": cols["vwap"],
            "line": {"width": 1.4, "color": VWAP},
            "xaxis": "x",
            "yaxis": "y",
        },
        _volume("taker buys", x, cols["buys"], UP),
        _volume("taker sells", x, cols["sells"], DOWN),
    ]
    layout = _base_layout()
    layout.update(
        xaxis=_axis(
            type="date",
            anchor="y",
            matches="x2",
            showticklabels=False,
            rangeslider={"visible": False},
        ),
        xaxis2=_axis(type="date", anchor="y2"),
        yaxis=_axis(
            anchor="x",
            domain=[0.26, 1.0],
            side="right",
            title={"text": "price"},
            tickformat=",.8~g",
        ),
        yaxis2=_axis(anchor="x2", domain=[0.0, 0.235], side="right", title={"text": "volume"}),
        barmode="stack",
        bargap=0.15,
        showlegend=True,
        legend={
            "orientation": "h",
            "y": 1.06,
            "x": 0,
            "bgcolor": "rgba(0,0,0,0)",
            "traceorder": "normal",
        },
        hovermode="x",
        uirevision=revision or symbol,
        meta={"symbol": symbol},
    )
    return {"data": data, "layout": layout}


def _volume(name: str, x: list[Any], y: list[Any], color: str) -> dict[str, Any]:
    return {
        "type": "bar",
        "name": name,
        "x": x,
        "y": y,
        "marker": {"color": color, "line": {"width": 0}},
        "xaxis": "x2",
        "yaxis": "y2",
    }


def row_columns(rows: Sequence[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """:func:`columns` of a few rows of ``queries.CHART_COLUMNS`` (a live tick), with the same
    values, without a DataFrame (pandas costs more than the rows for two candles)."""
    volume = [float(r[6]) for r in rows]
    buys = [float(r[7]) for r in rows]
    vwap = np.round(np.array([float(r[5]) for r in rows], dtype=float), 8)
    return {
        "x": [epoch_ms(r[0]) for r in rows],
        "open": [float(r[1]) for r in rows],
        "high": [float(r[2]) for r in rows],
        "low": [float(r[3]) for r in rows],
        "close": [float(r[4]) for r in rows],
        "vwap": vwap.tolist(),
        "buys": buys,
        "sells": np.clip(np.array(volume) - np.array(buys), 0, None).tolist(),
    }


def candle_patch(
    fresh: pd.DataFrame | Sequence[tuple[Any, ...]], trim: int, replaced: int, shown: int
) -> Patch:
    """Turn a figure of ``shown`` candles into the new one without resending it.

    ``fresh`` is a DataFrame like :func:`candle_figure` takes, or rows of
    ``queries.CHART_COLUMNS``. Drops ``trim`` leading candles, replaces the last shown candle
    with the first row of ``fresh`` when ``replaced`` is 1, and appends the remaining rows.
    """
    patch = Patch()
    if isinstance(fresh, pd.DataFrame):
        cols = columns(fresh) if not fresh.empty else {}
    else:
        cols = row_columns(fresh) if fresh else {}
    last = shown - 1 - trim
    for trace, field, column in TRACE_FIELDS:
        target = patch["data"][trace][field]
        for _ in range(trim):
            del target[0]
        values = cols.get(column, [])
        if replaced and values:
            if field != "x":  # same window, same time
                target[last] = values[0]
            values = values[1:]
        if values:
            target.extend(values)
    return patch
