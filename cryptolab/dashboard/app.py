"""Layout and thin callbacks. Data only through :mod:`cryptolab.store.queries` (via ``view``).

Every second the chart callback reads only what changed since the last shown candle and sends
a ``Patch`` (a few hundred bytes); a change of symbol, interval or range redraws the figure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

import dash
from dash import Input, Output, Patch, State, ctx, dcc, html, no_update

from cryptolab.dashboard import figures, guard, panel, view
from cryptolab.dashboard.auth import install_basic_auth
from cryptolab.settings import Settings
from cryptolab.store import Store
from cryptolab.store import queries as q

log = logging.getLogger(__name__)

StatusFn = Callable[[], dict[str, Any]]
MAX_SYMBOL_CHARS = 64


def _no_pipeline() -> dict[str, Any]:
    return {"live": False, "description": "store only (no pipeline running)"}


def _banner_style(live: bool) -> dict[str, str]:
    return {"background": "#1b5e20" if live else "#b71c1c"}


def _url_params(search: Any) -> dict[str, str]:
    if not isinstance(search, str):  # the page sends a string; anything else means no query
        return {}
    params = parse_qs(search.lstrip("?"), max_num_fields=20)
    return {k: v[0] for k, v in params.items() if v}


def _layout(refresh_ms: int) -> html.Div:
    intervals = view.available_intervals()
    ranges = [{"label": k, "value": k} for k in view.RANGES]
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Div(id="banner", className="banner", style=_banner_style(False)),
            html.Div(
                [
                    dcc.Dropdown(id="symbol", clearable=False, className="symbol"),
                    dcc.RadioItems(
                        id="interval",
                        options=intervals,
                        value=intervals[0] if intervals else None,
                        inline=True,
                        className="seg",
                    ),
                    dcc.RadioItems(
                        id="range", options=ranges, value="15m", inline=True, className="seg"
                    ),
                    html.Div(
                        [
                            dcc.Input(
                                id="custom-start",
                                debounce=True,
                                placeholder="from (UTC) 2026-11-01 00:00",
                            ),
                            dcc.Input(
                                id="custom-end", debounce=True, placeholder="to (UTC, empty = now)"
                            ),
                        ],
                        id="custom-box",
                        className="custom",
                        style={"display": "none"},
                    ),
                    html.Button("❚❚ Pause", id="pause", n_clicks=0, className="pause"),
                ],
                className="controls",
            ),
            html.Div(id="tiles", className="tiles", children=panel.tiles(None, "")),
            dcc.Graph(
                id="chart",
                figure=figures.empty_figure("loading…"),
                config={"displaylogo": False, "scrollZoom": True},
            ),
            html.Div(
                [
                    html.Div("pipeline", className="panel-title"),
                    html.Div(
                        html.Div(
                            [
                                html.Span("chart", className="cell-label"),
                                html.Span(id="chart-stats", className="cell-value"),
                            ],
                            className="cell",
                            id="metric-chart",
                        ),
                        className="cells",
                    ),
                    html.Div(id="pipeline", className="cells"),
                ],
                className="panel",
            ),
            dcc.Store(id="view"),
            dcc.Store(id="paused", data=False),
            dcc.Interval(id="tick", interval=refresh_ms),
            dcc.Interval(id="slow-tick", interval=max(refresh_ms * 5, 5000)),
        ],
        className="cryptolab",
    )


def create_app(
    store: Store, settings: Settings, status: StatusFn | None = None, *, refresh_ms: int = 1000
) -> dash.Dash:
    """The dashboard over ``store``. ``status`` returns the pipeline state (see ``panel``)."""
    app = dash.Dash(__name__, title="cryptolab", update_title="")
    install_basic_auth(app.server, settings)
    app.layout = _layout(refresh_ms)
    guard.install(app)
    _controls(app, store, settings)
    _chart(app, store)
    _tiles_and_panel(app, store, status or _no_pipeline)
    return app


def _controls(app: dash.Dash, store: Store, settings: Settings) -> None:
    """Symbol list (every 5 s), choices from the URL, the custom-range box, pause/resume."""

    @app.callback(
        Output("symbol", "options"),
        Output("symbol", "value"),
        Input("url", "search"),
        Input("slow-tick", "n_intervals"),
        State("symbol", "value"),
        State("symbol", "options"),
    )
    def refresh_symbols(search: str | None, _: int | None, current: Any, shown: Any) -> Any:
        try:
            available = q.symbols(store)
        except Exception:
            log.warning("symbols query failed", exc_info=True)
            available = []
        value = current
        if not isinstance(current, str) or not current:
            wanted = _url_params(search).get("symbol", "").strip().upper()[:MAX_SYMBOL_CHARS]
            preferred = [s for s in settings.symbols if s in available] or available
            value = wanted or (preferred[0] if preferred else settings.symbols[0])
        options = available if value in available else [*available, value]
        # Setting an unchanged value would still fire the chart callback: a needless redraw.
        return (
            options if options != shown else no_update,
            value if value != current else no_update,
        )

    @app.callback(
        Output("interval", "value"),
        Output("range", "value"),
        Output("custom-start", "value"),
        Output("custom-end", "value"),
        Input("url", "search"),
    )
    def controls_from_url(search: str | None) -> tuple[Any, ...]:
        params = _url_params(search)
        interval = params.get("interval")
        range_key = params.get("range")
        return (
            interval if interval in view.available_intervals() else no_update,
            range_key if range_key in view.RANGES else no_update,
            params.get("start", no_update),
            params.get("end", no_update),
        )

    @app.callback(Output("custom-box", "style"), Input("range", "value"))
    def toggle_custom(range_key: str | None) -> dict[str, str]:
        return {"display": "flex"} if range_key == "custom" else {"display": "none"}

    @app.callback(
        Output("paused", "data"),
        Output("pause", "children"),
        Input("pause", "n_clicks"),
        State("paused", "data"),
        prevent_initial_call=True,
    )
    def toggle_pause(_: int, paused: bool | None) -> tuple[bool, str]:
        return (not paused), ("▶ Resume" if not paused else "❚❚ Pause")


def _chart(app: dash.Dash, store: Store) -> None:
    """The chart: a full figure when the view changes, a Patch (or nothing) on a tick."""

    @app.callback(
        Output("chart", "figure"),
        Output("view", "data"),
        Output("chart-stats", "children"),
        Input("tick", "n_intervals"),
        Input("symbol", "value"),
        Input("interval", "value"),
        Input("range", "value"),
        Input("custom-start", "value"),
        Input("custom-end", "value"),
        Input("paused", "data"),
        State("view", "data"),
    )
    def refresh_chart(
        _: int | None,
        symbol: Any,
        interval: Any,
        range_key: Any,
        start: Any,
        end: Any,
        paused: bool | None,
        state: Any,
    ) -> tuple[Any, Any, Any]:
        request = _request(symbol, interval, range_key, start, end)
        ticked = set(ctx.triggered_prop_ids.values()) <= {"tick", "paused"}
        if ticked and _shows(state, request):
            return _live_tick(store, state, bool(paused))
        return _redraw(store, request)


def _tiles_and_panel(app: dash.Dash, store: Store, status_fn: StatusFn) -> None:
    """Last price / 24 h change / trades/s, and the banner with the pipeline panel."""

    @app.callback(
        Output("tiles", "children"), Input("tick", "n_intervals"), Input("symbol", "value")
    )
    def refresh_tiles(_: int | None, symbol: Any) -> Any:
        if not isinstance(symbol, str) or not symbol:
            return panel.tiles(None, "")
        try:
            return panel.tiles(q.ticker(store, symbol), symbol)
        except Exception:
            log.warning("ticker query failed symbol=%r", symbol[:MAX_SYMBOL_CHARS], exc_info=True)
            return panel.tiles(None, symbol)

    @app.callback(
        Output("banner", "children"),
        Output("banner", "style"),
        Output("pipeline", "children"),
        Input("tick", "n_intervals"),
    )
    def refresh_pipeline(_: int | None) -> tuple[Any, Any, Any]:
        try:
            state = status_fn()
        except Exception as exc:
            log.warning("status callable failed", exc_info=True)
            state = {"live": False, "description": "pipeline status unavailable", "error": exc}
        try:
            cells = [panel.freshness_cell(q.newest_trade_time(store))]
        except Exception:
            log.warning("freshness query failed", exc_info=True)
            cells = [panel.freshness_cell(None)]
        cells += panel.pipeline_cells(state)
        live = bool(state.get("live"))
        return str(state.get("description", "")), _banner_style(live), cells


def _request(symbol: Any, interval: Any, range_key: Any, start: Any, end: Any) -> view.Request:
    def text(value: Any) -> str:
        return value if isinstance(value, str) else ""

    return view.Request(
        text(symbol).strip()[:MAX_SYMBOL_CHARS],
        text(interval),
        text(range_key),
        text(start),
        text(end),
    )


def _empty(request: view.Request, note: str, stats: Any = None) -> tuple[Any, Any, Any]:
    """A friendly empty chart; the state remembers the request so ticks can look again."""
    state = {"empty": note, "request": asdict(request)}
    return figures.empty_figure(note), state, stats if stats is not None else ""


def _redraw(store: Store, request: view.Request) -> tuple[Any, Any, Any]:
    """A whole new figure for ``request``, or a friendly empty state."""
    if not request.symbol:
        return _empty(request, "Pick a symbol")
    started = time.perf_counter()
    try:
        read = view.read_full(store, request)
    except ValueError as exc:
        return _empty(request, str(exc))
    except Exception as exc:
        log.warning("chart query failed symbol=%r", request.symbol, exc_info=True)
        return _empty(request, f"The store did not answer ({type(exc).__name__}); retrying")
    elapsed_ms = (time.perf_counter() - started) * 1000
    stats = panel.chart_stats(elapsed_ms, len(read.candles), "full redraw")
    if read.view is None:
        return _empty(request, read.note, stats)
    figure = figures.candle_figure(read.candles, request.symbol, revision=read.view.key)
    if read.note:
        figure["layout"]["title"] = {"text": read.note, "font": {"size": 12}}
    return figure, read.view.to_dict(), stats


def _shows(state: Any, request: view.Request) -> bool:
    """Whether the chart already shows ``request`` (so a tick only needs what changed)."""
    if not isinstance(state, dict):
        return False
    if "empty" in state:
        return bool(state.get("request") == asdict(request))
    return bool(state.get("key") == request.key)


def _live_tick(store: Store, state: Any, paused: bool) -> tuple[Any, Any, Any]:
    """Send only what changed since the last shown candle (a Patch), or nothing."""
    if paused:
        return no_update, no_update, panel.chart_stats(0.0, 0, "paused")
    if "empty" in state:
        return _retry_empty(store, state)
    current = view.ChartView.from_dict(state)
    if current is None or not current.live:
        return no_update, no_update, no_update
    started = time.perf_counter()
    try:
        increment = view.read_increment(store, current)
    except Exception:
        log.warning("live chart query failed symbol=%r", current.symbol, exc_info=True)
        return no_update, no_update, no_update
    elapsed_ms = (time.perf_counter() - started) * 1000
    if increment is None:
        return _redraw(store, current.request)
    if increment.unchanged:
        return no_update, no_update, panel.chart_stats(elapsed_ms, 0, "no change")
    patch = figures.candle_patch(
        increment.candles, increment.trim, increment.replaced, current.count
    )
    stats = panel.chart_stats(elapsed_ms, len(increment.candles), "patch")
    return patch, _state_patch(state, increment.view.to_dict()), stats


def _state_patch(state: dict[str, Any], new: dict[str, Any]) -> Patch:
    """The view kept in the browser, updated in place: only the keys that changed travel (the
    signature every tick; the bounds and count when a candle opens)."""
    patch = Patch()
    for key, value in new.items():
        if state.get(key) != value:
            patch[key] = value
    return patch


def _retry_empty(store: Store, state: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The chart shows an empty state: look again, and resend only if the answer changed."""
    try:
        request = view.Request(**state.get("request", {}))
    except TypeError:
        return no_update, no_update, no_update
    figure, new_state, stats = _redraw(store, request)
    if isinstance(new_state, dict) and new_state.get("empty") == state.get("empty"):
        return no_update, no_update, stats
    return figure, new_state, stats
