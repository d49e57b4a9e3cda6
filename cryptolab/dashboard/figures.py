"""Plotly figures built from store query results (pandas DataFrames).

Trace arrays are plain JSON lists (never numpy's base64 "typed arrays") so that a live tick can
append, replace and drop single candles with a Dash ``Patch`` instead of sending a new figure.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import Patch
from plotly.subplots import make_subplots

UP = "#26a69a"
DOWN = "#ef5350"
VWAP = "#f5c542"
PAPER = "#131722"
GRID = "#262b3a"
TEXT = "#c9ced8"
HEIGHT = 600

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


def _base_layout() -> dict[str, Any]:
    axis = {"gridcolor": GRID, "zerolinecolor": GRID, "linecolor": GRID}
    return {
        "template": {},  # everything is set here: do not ship Plotly's default template (~7 KB)
        "height": HEIGHT,
        "paper_bgcolor": PAPER,
        "plot_bgcolor": PAPER,
        "font": {"color": TEXT, "family": "Inter, Segoe UI, Helvetica, Arial, sans-serif"},
        "margin": {"l": 60, "r": 20, "t": 36, "b": 30},
        "xaxis": dict(axis),
        "yaxis": dict(axis),
    }


def _bar(color: str) -> dict[str, Any]:
    return {"color": color, "line": {"width": 0}}


def empty_figure(message: str) -> go.Figure:
    """A blank chart that says why it is blank."""
    fig = go.Figure(layout=_base_layout())
    fig.add_annotation(
        text=html.escape(message, quote=False),  # Plotly renders some HTML tags in annotation text
        showarrow=False,
        font={"size": 18, "color": TEXT},
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
    )
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, meta={"empty": message})
    return fig


def columns(candles: pd.DataFrame) -> dict[str, list[Any]]:
    """The trace arrays of ``candles`` as JSON-ready lists (times as UTC strings)."""
    starts = pd.to_datetime(candles["window_start"], utc=True)
    volume = candles["volume"].astype(float)
    buys = candles["buy_volume"].astype(float)
    return {
        "x": starts.dt.strftime("%Y-%m-%d %H:%M:%S").tolist(),
        "open": candles["open"].astype(float).tolist(),
        "high": candles["high"].astype(float).tolist(),
        "low": candles["low"].astype(float).tolist(),
        "close": candles["close"].astype(float).tolist(),
        "vwap": candles["vwap"].astype(float).round(8).tolist(),
        "buys": buys.tolist(),
        "sells": (volume - buys).clip(lower=0).tolist(),
    }


def candle_figure(candles: pd.DataFrame, symbol: str, revision: str = "") -> go.Figure:
    """Candlesticks with VWAP on top, volume split into taker buys and sells below.

    ``revision`` keeps the user's zoom while the data refreshes (Plotly ``uirevision``).
    """
    if candles.empty:
        return empty_figure(f"No candles for {symbol[:40]!r} yet")
    cols = columns(candles)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.76, 0.24], vertical_spacing=0.02
    )
    fig.add_trace(
        go.Candlestick(
            x=cols["x"],
            open=cols["open"],
            high=cols["high"],
            low=cols["low"],
            close=cols["close"],
            name=symbol,
            increasing={"line": {"color": UP}, "fillcolor": UP},
            decreasing={"line": {"color": DOWN}, "fillcolor": DOWN},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=cols["x"],
            y=cols["vwap"],
            name="VWAP",
            mode="lines",
            line={"width": 1.4, "color": VWAP},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(x=cols["x"], y=cols["buys"], name="taker buys", marker=_bar(UP)), row=2, col=1
    )
    fig.add_trace(
        go.Bar(x=cols["x"], y=cols["sells"], name="taker sells", marker=_bar(DOWN)), row=2, col=1
    )
    fig.update_layout(
        _base_layout(),
        barmode="stack",
        bargap=0.15,
        xaxis_rangeslider_visible=False,
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
    for row in (1, 2):
        fig.update_xaxes(gridcolor=GRID, linecolor=GRID, row=row, col=1)
        fig.update_yaxes(gridcolor=GRID, linecolor=GRID, side="right", row=row, col=1)
    fig.update_yaxes(title_text="price", tickformat=",.8~g", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    return fig


def candle_patch(fresh: pd.DataFrame, trim: int, replaced: int, shown: int) -> Patch:
    """Turn a figure of ``shown`` candles into the new one without resending it.

    Drops ``trim`` leading candles, replaces the last shown candle with the first row of
    ``fresh`` when ``replaced`` is 1, and appends the remaining rows.
    """
    patch = Patch()
    cols = columns(fresh) if not fresh.empty else {}
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
