"""Plotly figures for the notebooks and reports, built from store query results.

Float data is rounded (prices and volumes to 8 decimals, derived ratios to 6 significant
places) so a figure is the same on every run and machine: committed notebook outputs are
compared value by value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cryptolab.lab import indicators

UP = "#26a69a"
DOWN = "#ef5350"
ACCENT = "#5c6bc0"
GREY = "#9e9e9e"
HEIGHT = 460


def _r(values: Any, places: int = 8) -> np.ndarray:
    return np.round(np.asarray(values, dtype=float), places)


def _sig(values: Any, digits: int = 6) -> np.ndarray:
    """Round to ``digits`` significant places (for ratios and other derived floats)."""
    array = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(array == 0, 0, np.floor(np.log10(np.abs(array))))
    places = (digits - 1 - np.nan_to_num(scale)).astype(int)
    return np.array([round(float(v), int(p)) for v, p in zip(array, places, strict=True)])


def _layout(fig: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        height=height,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        template="plotly_white",
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    )
    return fig


def empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "", height=200)


def price_with_vwap(candles_10s: pd.DataFrame, symbol: str) -> go.Figure:
    """10 s closes inside their high-low band, with the session VWAP."""
    if candles_10s.empty:
        return empty(f"no candles for {symbol}")
    x = candles_10s["window_start"]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_r(candles_10s["high"]),
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_r(candles_10s["low"]),
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(92,107,192,0.15)",
            name="10 s high-low",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_r(candles_10s["close"]),
            mode="lines",
            name="10 s close",
            line={"width": 1.4, "color": "#263238"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_r(indicators.session_vwap(candles_10s)),
            mode="lines",
            name="session VWAP",
            line={"width": 2, "color": ACCENT, "dash": "dash"},
        )
    )
    fig.update_yaxes(title_text="price", tickformat=",")
    return _layout(fig, f"{symbol}: price and session VWAP")


def candles_with_volume(candles: pd.DataFrame, symbol: str, interval: str) -> go.Figure:
    """Candlesticks with each candle's VWAP, and taker buy/sell volume below."""
    if candles.empty:
        return empty(f"no {interval} candles for {symbol}")
    x = candles["window_start"]
    buys = _r(candles["buy_volume"])
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.04
    )
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=_r(candles["open"]),
            high=_r(candles["high"]),
            low=_r(candles["low"]),
            close=_r(candles["close"]),
            name=f"{interval} candles",
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_r(candles["vwap"]),
            mode="markers",
            name="candle VWAP",
            marker={"size": 4, "color": ACCENT},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(go.Bar(x=x, y=buys, name="taker buys", marker_color=UP), row=2, col=1)
    sells = _r(candles["volume"].astype(float) - buys)
    fig.add_trace(go.Bar(x=x, y=sells, name="taker sells", marker_color=DOWN), row=2, col=1)
    fig.update_layout(barmode="stack", xaxis_rangeslider_visible=False)
    fig.update_yaxes(title_text="price", tickformat=",", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    return _layout(fig, f"{symbol}: {interval} candles, VWAP and taker volume", height=560)


def volume_profile(profile: pd.DataFrame, symbol: str, vwap: float | None = None) -> go.Figure:
    """Volume traded at each price level, taker buys and sells stacked; the busiest level (point
    of control) and the VWAP marked."""
    if profile.empty:
        return empty(f"no trades for {symbol}")
    middle = _r((profile["price_low"] + profile["price_high"]) / 2, 4)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=middle,
            x=_r(profile["buy_volume"]),
            orientation="h",
            name="taker buys",
            marker_color=UP,
        )
    )
    fig.add_trace(
        go.Bar(
            y=middle,
            x=_r(profile["sell_volume"]),
            orientation="h",
            name="taker sells",
            marker_color=DOWN,
        )
    )
    poc = float(middle[int(np.argmax(profile["volume"].to_numpy()))])
    fig.add_hline(
        y=poc, line={"color": "#37474f", "width": 1}, annotation_text=f"point of control {poc:,.2f}"
    )
    if vwap is not None:
        fig.add_hline(
            y=round(vwap, 4),
            line={"color": ACCENT, "dash": "dash"},
            annotation_text=f"VWAP {vwap:,.2f}",
            annotation_position="bottom right",
        )
    fig.update_layout(barmode="stack", bargap=0.05)
    fig.update_xaxes(title_text="volume (base)")
    fig.update_yaxes(title_text="price", tickformat=",")
    return _layout(fig, f"{symbol}: volume profile by price", height=520)


def realized_volatility(rv: pd.DataFrame, symbol: str, interval: str) -> go.Figure:
    """Realized volatility per interval, in basis points."""
    if rv.empty:
        return empty(f"not enough candles for {symbol}")
    fig = go.Figure(
        go.Bar(
            x=rv["window_start"],
            y=_sig(rv["realized_vol_bp"]),
            marker_color=ACCENT,
            name="realized volatility",
        )
    )
    fig.update_yaxes(title_text=f"bp per {interval}")
    return _layout(fig, f"{symbol}: realized volatility per {interval} (from 10 s returns)")


def trade_sizes(sizes: pd.DataFrame, symbol: str) -> go.Figure:
    """Share of trades and share of quote volume per trade-size bucket (log scale)."""
    if sizes.empty:
        return empty(f"no trades for {symbol}")
    labels = [
        f"{low:,.0f}–{high:,.0f}"
        for low, high in zip(sizes["notional_low"], sizes["notional_high"], strict=True)
    ]
    trades = sizes["trades"].astype(float)
    quote = sizes["quote_volume"].astype(float)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(x=labels, y=_sig(trades / trades.sum() * 100), name="% of trades", marker_color=GREY)
    )
    fig.add_trace(
        go.Bar(
            x=labels,
            y=_sig(quote / quote.sum() * 100),
            name="% of quote volume",
            marker_color=ACCENT,
        )
    )
    fig.update_xaxes(title_text="trade size (quote currency, log buckets)")
    fig.update_yaxes(title_text="%")
    return _layout(fig, f"{symbol}: trade-size distribution")


def imbalance(flow: pd.DataFrame, symbol: str, interval: str) -> go.Figure:
    """Taker imbalance per interval (bars) against the interval's return (line)."""
    if flow.empty:
        return empty(f"no candles for {symbol}")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    values = _sig(flow["imbalance"])
    fig.add_trace(
        go.Bar(
            x=flow["window_start"],
            y=values,
            name="imbalance (buys - sells) / volume",
            marker_color=[UP if v >= 0 else DOWN for v in values],
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=flow["window_start"],
            y=_sig(flow["return_pct"]),
            name="return %",
            mode="lines+markers",
            line={"color": "#263238", "width": 1.2},
            marker={"size": 4},
        ),
        secondary_y=True,
    )
    # both axes symmetric around zero, so the zero lines coincide and signs compare at a glance
    reach = max(float(np.abs(values).max()), 1e-9) * 1.15
    moves = max(float(np.abs(flow["return_pct"].astype(float)).max()), 1e-9) * 1.15
    fig.update_yaxes(title_text="imbalance", range=[-reach, reach], secondary_y=False)
    fig.update_yaxes(title_text="return %", range=[-moves, moves], secondary_y=True, showgrid=False)
    return _layout(fig, f"{symbol}: taker buy/sell imbalance per {interval}")
