"""The market page (``/market``): every symbol in one sortable, filterable table with a treemap.

Layout and thin callbacks only. Data comes from :class:`cryptolab.store.overview.MarketOverview`
(each symbol's newest candle and the open minute every tick; the rolled-up 24 h figures
recomputed off the request path once a minute); :mod:`cryptolab.dashboard.market_view` decides
what changed since the browser's last update, so a tick sends a ``Patch`` of the cells that look
different, not the table.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dash
from dash import Input, Output, State, dash_table, dcc, html, no_update

from cryptolab.dashboard import market_figures, market_view
from cryptolab.dashboard.market_view import Filters, Sent
from cryptolab.store import Store
from cryptolab.store.connect import second_connection
from cryptolab.store.overview import MarketOverview, MarketRow, MarketSnapshot
from cryptolab.times import iso_z

log = logging.getLogger(__name__)

PATH = "/market"
PAGE_SIZE = 50
_VOLUME = {"specifier": ",.4~s"}
_PCT = {"locale": {"symbol": ["", " %"]}, "specifier": "+$,.2f"}
COLUMNS = [
    {"id": "symbol", "name": "symbol", "presentation": "markdown"},
    {"id": "quote", "name": "quote"},
    {"id": "last", "name": "last price", "type": "numeric", "format": {"specifier": ",.7~r"}},
    {"id": "chg_1h", "name": "1 h %", "type": "numeric", "format": _PCT},
    {"id": "chg_24h", "name": "24 h %", "type": "numeric", "format": _PCT},
    {
        "id": "vol_24h",
        "name": "quote vol 24 h",
        "type": "numeric",
        "format": {"specifier": ",.4~s"},
    },
    {"id": "tps", "name": "trades/s", "type": "numeric", "format": {"specifier": ",.2f"}},
    {"id": "spark", "name": "last hour"},
    {"id": "name", "name": "name"},
    {"id": "p1h", "name": "p1h", "type": "numeric"},
    {"id": "p24h", "name": "p24h", "type": "numeric"},
]
HIDDEN = ["name", "p1h", "p24h"]
_CELL = {
    "backgroundColor": "#131722",
    "color": "#c9ced8",
    "border": "1px solid #1e2433",
    "fontFamily": "Inter, Segoe UI, Helvetica, Arial, sans-serif",
    "fontSize": "13px",
    "padding": "3px 10px",
}


def _colors(column: str, partial: str) -> list[dict[str, Any]]:
    return [
        {"if": {"filter_query": f"{{{column}}} > 0", "column_id": column}, "color": "#26a69a"},
        {"if": {"filter_query": f"{{{column}}} < 0", "column_id": column}, "color": "#ef5350"},
        {
            "if": {"filter_query": f"{{{partial}}} = 1", "column_id": column},
            "fontStyle": "italic",
            "opacity": 0.6,
        },
    ]


def layout(refresh_ms: int) -> html.Div:
    return html.Div(
        [
            dcc.Location(id="market-url", refresh=False),
            dcc.Location(id="market-go", refresh=True),
            html.Div(
                [html.A("← chart", href="/", className="nav"), html.Span("Market overview")],
                className="banner market-banner",
            ),
            html.Div(
                [
                    dcc.Dropdown(
                        id="market-quote", placeholder="quote asset: all", className="quote"
                    ),
                    dcc.Input(
                        id="market-text",
                        placeholder="filter symbols, e.g. BTC",
                        maxLength=market_view.MAX_TEXT,
                        className="market-text",
                    ),
                    html.Span(id="market-summary", className="market-summary"),
                ],
                className="controls",
            ),
            dcc.Graph(
                id="market-map",
                figure=market_figures.empty_figure("loading…"),
                config={"displaylogo": False, "displayModeBar": False},
            ),
            dash_table.DataTable(  # type: ignore[attr-defined]
                id="market-table",
                columns=COLUMNS,
                hidden_columns=HIDDEN,
                data=[],
                # sorted, filtered and paged on the server: the browser holds one page
                sort_action="custom",
                sort_mode="single",
                sort_by=[{"column_id": "vol_24h", "direction": "desc"}],
                page_action="custom",
                page_current=0,
                page_size=PAGE_SIZE,
                page_count=1,
                markdown_options={"link_target": "_self"},
                style_as_list_view=True,
                style_cell=_CELL,
                style_header={**_CELL, "backgroundColor": "#1e2433", "fontWeight": 600},
                style_cell_conditional=[
                    {"if": {"column_id": c}, "textAlign": "left"} for c in ("symbol", "quote")
                ]
                + [{"if": {"column_id": "spark"}, "fontFamily": "monospace", "color": "#8ab4ff"}],
                style_data_conditional=_colors("chg_1h", "p1h") + _colors("chg_24h", "p24h"),
                # the filter row and column toggle: the controls above drive filter_query
                css=[{"selector": ".show-hide, .dash-spreadsheet-menu", "rule": "display: none"}],
                tooltip_header={
                    "chg_1h": "change against the price 1 h ago (italic: against the first "
                    "price since, the symbol had none then)",
                    "chg_24h": "change against the price 24 h ago (italic: since first price)",
                    "tps": "trades per second over the last complete minute",
                },
            ),
            dcc.Store(id="market-state"),
            dcc.Interval(id="market-tick", interval=refresh_ms),
        ],
        className="cryptolab market",
    )


def install(app: dash.Dash, store: Store) -> MarketOverview:
    """The market page's callbacks over ``store``."""
    overview = MarketOverview(store, lambda: second_connection(store))
    sent = Sent()

    @app.callback(
        Output("market-quote", "value"),
        Output("market-text", "value"),
        Input("market-url", "search"),
    )
    def filters_from_url(search: Any) -> tuple[Any, Any]:
        chosen = market_view.url_filters(search)
        return (chosen.quote or None), chosen.text

    @app.callback(
        Output("market-table", "data"),
        Output("market-table", "page_count"),
        Output("market-map", "figure"),
        Output("market-state", "data"),
        Output("market-summary", "children"),
        Output("market-quote", "options"),
        Input("market-tick", "n_intervals"),
        Input("market-quote", "value"),
        Input("market-text", "value"),
        Input("market-table", "sort_by"),
        Input("market-table", "page_current"),
        State("market-state", "data"),
    )
    def refresh_market(
        _: Any, quote: Any, text: Any, sort_by: Any, page: Any, state: Any
    ) -> tuple[Any, ...]:
        filters = market_view.clean_filters(quote, text)
        return update(overview, sent, state, filters, sort_by, page)

    @app.callback(
        Output("market-go", "href"),
        Input("market-map", "clickData"),
        prevent_initial_call=True,
    )
    def open_chart(click: Any) -> Any:
        try:
            symbol = click["points"][0]["label"]
        except (TypeError, KeyError, IndexError):
            return no_update
        link = market_view.chart_link(str(symbol))
        return link[link.index("(") + 1 : -1] if link.startswith("[") else no_update

    return overview


def update(
    overview: MarketOverview,
    sent: Sent,
    state: Any,
    filters: Filters,
    sort_by: Any = None,
    page: Any = 0,
) -> tuple[Any, ...]:
    """One tick of the page: (table page or Patch, page count, treemap or Patch, state,
    summary, quote options)."""
    started = time.perf_counter()
    try:
        snap = overview.snapshot()
    except Exception as exc:
        log.warning("market overview query failed", exc_info=True)
        note = f"The store did not answer ({type(exc).__name__}); retrying"
        return no_update, no_update, no_update, no_update, note, no_update
    rows, pages, mine = market_view.page_rows(snap, filters, sort_by, page, PAGE_SIZE)
    state = state if isinstance(state, dict) else {}
    table = market_view.table_update(sent, state.get("page"), rows)
    tiles = [market_view.table_row(r) for r in market_figures.tiles(mine)]
    shown = sent.rows(state.get("tiles"))
    if shown is None:
        figure: Any = market_figures.treemap(tiles, len(mine), _no_match(snap, mine))
    else:
        figure = market_figures.treemap_patch(shown, tiles, len(mine)) or no_update
    new_state = {
        "page": table.token if table is not None else state.get("page"),
        "tiles": sent.remember(tiles),
        "pages": pages,
    }
    summary = _summary(snap, mine, overview.error, time.perf_counter() - started)
    page_count = pages if state.get("pages") != pages else no_update
    kept = new_state if new_state != state else no_update
    if table is None:
        return no_update, page_count, figure, kept, summary, no_update
    options = market_view.quote_options(snap) if table.full else no_update
    return table.data, page_count, figure, kept, summary, options


def _no_match(snap: MarketSnapshot, mine: list[MarketRow]) -> str:
    return "No symbol matches the filter" if snap.rows and not mine else ""


def _summary(snap: MarketSnapshot, rows: list[MarketRow], error: str | None, took: float) -> str:
    if snap.newest is None:
        return "No candles yet: start the pipeline (cryptolab up) or load a tape"
    up = sum(1 for r in rows if (r.change_24h or 0) > 0)
    down = sum(1 for r in rows if (r.change_24h or 0) < 0)
    text = (
        f"{len(rows):,} symbols · {up:,} up / {down:,} down (24 h) · "
        f"as of {iso_z(snap.newest)} · {took * 1000:.0f} ms"
    )
    if not snap.complete:
        text += " · computing the 24 h figures…"
    if error:
        text += f" · rollup refresh failed: {error}"
    return text
