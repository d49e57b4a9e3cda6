"""Plotly figures built from store query results (pandas DataFrames)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

UP = "#26a69a"
DOWN = "#ef5350"


def empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, font={"size": 16}, x=0.5, y=0.5, xref="paper", yref="paper"
    )
    fig.update_layout(
        xaxis={"visible": False}, yaxis={"visible": False}, height=560, template="plotly_white"
    )
    return fig


def candle_figure(candles: pd.DataFrame, symbol: str) -> go.Figure:
    """Candlesticks with VWAP on top, volume split into taker buys and sells below."""
    if candles.empty:
        return empty_figure(f"No candles for {symbol} yet")
    x = candles["window_start"]
    volume = candles["volume"].astype(float)
    buys = candles["buy_volume"].astype(float)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03
    )
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=candles["open"].astype(float),
            high=candles["high"].astype(float),
            low=candles["low"].astype(float),
            close=candles["close"].astype(float),
            name=symbol,
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=x, y=candles["vwap"], name="VWAP", mode="lines", line={"width": 1, "color": "#5c6bc0"}
        ),
        row=1,
        col=1,
    )
    fig.add_trace(go.Bar(x=x, y=buys, name="taker buys", marker_color=UP), row=2, col=1)
    fig.add_trace(go.Bar(x=x, y=volume - buys, name="taker sells", marker_color=DOWN), row=2, col=1)
    fig.update_layout(
        barmode="stack",
        height=560,
        margin={"l": 50, "r": 20, "t": 30, "b": 30},
        xaxis_rangeslider_visible=False,
        template="plotly_white",
        legend={"orientation": "h", "y": 1.05},
        uirevision=symbol,  # keep the user's zoom while data refreshes
    )
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    return fig
