"""Layout and thin callbacks. Data only through :mod:`cryptolab.store.queries`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dash
from dash import Input, Output, dcc, html

from cryptolab.dashboard import figures
from cryptolab.settings import Settings
from cryptolab.store import Store
from cryptolab.store import queries as q

log = logging.getLogger(__name__)

VISIBLE_WINDOWS = 90  # 15 minutes of 10 s candles
StatusFn = Callable[[], dict[str, Any]]


def _banner_style(live: bool) -> dict[str, str]:
    color = "#2e7d32" if live else "#c62828"
    return {
        "background": color,
        "color": "white",
        "padding": "6px 12px",
        "fontWeight": "bold",
        "fontFamily": "sans-serif",
    }


def create_app(store: Store, settings: Settings, status: StatusFn | None = None) -> dash.Dash:
    """The dashboard over ``store``. ``status`` returns the pipeline state (source, live or not)."""
    status = status or (lambda: {"live": False, "description": "store only (no pipeline)"})
    app = dash.Dash(__name__, title="cryptolab", update_title="")
    app.layout = html.Div(
        [
            html.Div(id="banner", style=_banner_style(False)),
            html.Div(
                [
                    dcc.Dropdown(id="symbol", clearable=False, style={"width": "220px"}),
                    html.Span(id="last-price", style={"fontSize": "20px", "marginLeft": "16px"}),
                ],
                style={"display": "flex", "alignItems": "center", "padding": "8px"},
            ),
            dcc.Graph(
                id="chart",
                figure=figures.empty_figure("waiting for data"),
                config={"displaylogo": False},
            ),
            html.Pre(id="pipeline", style={"fontSize": "12px", "padding": "0 12px"}),
            dcc.Interval(id="tick", interval=1000),
        ],
        style={"fontFamily": "sans-serif"},
    )

    @app.callback(
        Output("banner", "children"),
        Output("banner", "style"),
        Output("symbol", "options"),
        Output("symbol", "value"),
        Input("tick", "n_intervals"),
        Input("symbol", "value"),
    )
    def refresh_controls(_: int | None, current: str | None) -> tuple[Any, ...]:
        state = status()
        available = q.symbols(store) or list(settings.symbols)
        value = current if current in available else available[0]
        return state["description"], _banner_style(bool(state["live"])), available, value

    @app.callback(
        Output("chart", "figure"),
        Output("last-price", "children"),
        Output("pipeline", "children"),
        Input("tick", "n_intervals"),
        Input("symbol", "value"),
    )
    def refresh_chart(_: int | None, symbol: str | None) -> tuple[Any, ...]:
        if not symbol:
            return figures.empty_figure("no symbol selected"), "", ""
        started = time.perf_counter()
        candles = q.candles(store, symbol, last=VISIBLE_WINDOWS)
        elapsed_ms = (time.perf_counter() - started) * 1000
        newest = q.newest_trade_time(store)
        freshness = f"{(datetime.now(UTC) - newest).total_seconds():.1f} s" if newest else "n/a"
        last = f"{symbol} {candles['close'].iloc[-1]:f}" if not candles.empty else ""
        panel = (
            f"query {elapsed_ms:.1f} ms | rows {len(candles)} | newest trade "
            f"{newest.isoformat() if newest else 'none'} | freshness {freshness}"
        )
        return figures.candle_figure(candles, symbol), last, panel

    return app
