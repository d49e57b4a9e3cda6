"""The dashboard over a real chDB store, through Dash's HTTP callback endpoint (as the page
calls it). The browser itself is exercised in tests/e2e/test_dashboard_browser.py."""

from __future__ import annotations

import html
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from cryptolab.bus.broker import free_port
from cryptolab.dashboard.app import create_app
from cryptolab.dashboard.server import DashServer
from cryptolab.store import Store, open_store, queries
from cryptolab.store.schema import CANDLES_10S
from tests.dash_http import apply_patch, chart_request, post

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _rows(symbol: str, windows: list[tuple[int, str, int]], updated_ms: int) -> pa.Table:
    """Candles of ``symbol`` from (seconds after T0, close, trades); open = close - 1."""
    ts = pa.timestamp("ms", tz="UTC")
    start_ms = [int((T0 + timedelta(seconds=s)).timestamp() * 1000) for s, _, _ in windows]
    close = [Decimal(c) for _, c, _ in windows]
    dec = pa.decimal128(18, 8)
    return pa.table(
        {
            "symbol": [symbol] * len(windows),
            "window_start": pa.array(start_ms, ts),
            "window_end": pa.array([m + 10_000 for m in start_ms], ts),
            "open": pa.array([c - 1 for c in close], dec),
            "high": pa.array([c + 2 for c in close], dec),
            "low": pa.array([c - 3 for c in close], dec),
            "close": pa.array(close, dec),
            "volume": pa.array([Decimal(3)] * len(windows), pa.decimal128(38, 8)),
            "quote_volume": pa.array([c * 3 for c in close], pa.decimal128(38, 16)),
            "vwap": pa.array([float(c) for c in close]),
            "trades": pa.array([t for _, _, t in windows], pa.uint64()),
            "buy_volume": pa.array([Decimal(1)] * len(windows), pa.decimal128(38, 8)),
            "first_trade_id": pa.array([1] * len(windows), pa.uint64()),
            "last_trade_id": pa.array([1] * len(windows), pa.uint64()),
            "updated_at": pa.array([updated_ms] * len(windows), ts),
        }
    )


def _at(seconds: int) -> int:
    """Epoch milliseconds of ``seconds`` after T0 (the chart's x values)."""
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def _candle_trace(figure: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in figure["data"] if t["type"] == "candlestick")


def _message(figure: dict[str, Any]) -> str:
    return html.unescape(" ".join(a["text"] for a in figure["layout"].get("annotations", [])))


def _count(store: Store) -> int:
    return int(store.query_rows(f"SELECT count() FROM {store.table(CANDLES_10S)}")[0][0])


@pytest.fixture
def filled(make_settings: Any) -> tuple[Store, Any]:
    settings = make_settings()
    store = open_store(settings)
    windows = [(10 * i, str(1000 + i), 5) for i in range(120)]  # 20 minutes of BTCUSDT
    store.insert_arrow(CANDLES_10S, _rows("BTCUSDT", windows, 1))
    store.insert_arrow(CANDLES_10S, _rows("ETHUSDT", [(0, "50", 1)], 1))
    return store, settings


def test_live_ticks_send_patches_that_build_the_redrawn_figure(filled: tuple[Store, Any]) -> None:
    store, settings = filled
    client = create_app(store, settings).server.test_client()
    code, full, full_bytes = post(client, chart_request("BTCUSDT", range_key="15m"))
    assert code == 200
    figure = full["response"]["chart"]["figure"]
    view = full["response"]["view"]["data"]
    candles = _candle_trace(figure)
    assert len(candles["x"]) == 90  # 15 minutes of 10 s candles, ending at the newest
    assert candles["x"][0] == _at(300) and candles["x"][-1] == _at(1190)  # epoch ms, UTC
    assert candles["close"][-1] == 1119.0

    # The open candle changes, three new ones arrive (one window without trades): 4 slide out.
    store.insert_arrow(CANDLES_10S, _rows("BTCUSDT", [(1190, "2000", 9)], 2))
    store.insert_arrow(CANDLES_10S, _rows("BTCUSDT", [(1200, "2001", 1), (1210, "2002", 1)], 2))
    store.insert_arrow(CANDLES_10S, _rows("BTCUSDT", [(1230, "2003", 1)], 2))
    code, tick, tick_bytes = post(
        client, chart_request("BTCUSDT", range_key="15m", state=view, changed="tick")
    )
    assert code == 200
    patched = apply_patch(figure, tick["response"]["chart"]["figure"])
    code, redrawn, _ = post(client, chart_request("BTCUSDT", range_key="15m"))
    expected = redrawn["response"]["chart"]["figure"]
    assert [t["x"] for t in patched["data"]] == [t["x"] for t in expected["data"]]
    for field in ("open", "high", "low", "close"):
        assert _candle_trace(patched)[field] == _candle_trace(expected)[field]
    assert [t.get("y") for t in patched["data"]] == [t.get("y") for t in expected["data"]]
    assert _candle_trace(patched)["x"][0] == _at(340)
    assert _candle_trace(patched)["close"][-3:] == [2001.0, 2002.0, 2003.0]
    # The view in the browser is updated in place too (a Patch of the keys that changed).
    new_view = apply_patch(view, tick["response"]["view"]["data"])
    assert new_view["count"] == len(_candle_trace(expected)["x"]) == 89
    assert tick_bytes * 2 < full_bytes, (tick_bytes, full_bytes)

    # Nothing changed since: the tick sends no figure at all.
    code, idle, _ = post(
        client, chart_request("BTCUSDT", range_key="15m", state=new_view, changed="tick")
    )
    assert code in (200, 204)
    assert "chart" not in (idle.get("response") or {})
    # Paused: nothing either, whatever changed.
    store.insert_arrow(CANDLES_10S, _rows("BTCUSDT", [(1240, "2004", 1)], 2))
    code, paused, _ = post(
        client,
        chart_request("BTCUSDT", range_key="15m", state=new_view, paused=True, changed="tick"),
    )
    assert "chart" not in (paused.get("response") or {})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"symbol": "x' OR 1=1; DROP TABLE candles_10s --"}, "No candles for"),
        ({"symbol": "<img src=x onerror=alert(1)>"}, "No candles for"),
        ({"symbol": 12345}, "Pick a symbol"),
        ({"interval": "3s"}, "unknown interval"),
        ({"interval": "10s' OR '1'='1"}, "unknown interval"),
        ({"range_key": "2y"}, "unknown time range"),
        ({"range_key": "custom", "start": "yesterday"}, "not an ISO 8601 time: 'yesterday'"),
        (
            {"range_key": "custom", "start": "2026-11-01 00:10", "end": "2026-11-01 00:05"},
            "Empty range",
        ),
        ({"range_key": "custom", "start": "2030-01-01"}, "No BTCUSDT candles in this range"),
    ],
)
def test_bad_input_gets_a_friendly_empty_chart(
    filled: tuple[Store, Any], overrides: dict[str, Any], message: str
) -> None:
    store, settings = filled
    before = _count(store)
    client = create_app(store, settings).server.test_client()
    args: dict[str, Any] = {"symbol": "BTCUSDT", **overrides}
    code, answer, _ = post(client, chart_request(**args))
    assert code == 200
    figure = answer["response"]["chart"]["figure"]
    assert message in _message(figure)
    assert "Traceback" not in json.dumps(answer)
    assert _count(store) == before
    assert queries.symbols(store) == ["BTCUSDT", "ETHUSDT"]


def test_custom_range_shows_exactly_that_range_and_stays_put(filled: tuple[Store, Any]) -> None:
    store, settings = filled
    client = create_app(store, settings).server.test_client()
    request = chart_request(
        "BTCUSDT", range_key="custom", start="2026-11-01T00:01:00Z", end="2026-11-01 00:02"
    )
    _, answer, _ = post(client, request)
    candles = _candle_trace(answer["response"]["chart"]["figure"])
    assert candles["x"] == [_at(s) for s in range(60, 120, 10)]
    assert candles["close"] == [1006.0, 1007.0, 1008.0, 1009.0, 1010.0, 1011.0]
    store.insert_arrow(CANDLES_10S, _rows("BTCUSDT", [(60, "7", 1)], 5))
    state = answer["response"]["view"]["data"]
    again = chart_request(
        "BTCUSDT",
        range_key="custom",
        start="2026-11-01T00:01:00Z",
        end="2026-11-01 00:02",
        state=state,
        changed="tick",
    )
    _, tick, _ = post(client, again)
    assert "chart" not in (tick.get("response") or {}), "a custom range does not follow live data"


def _tiles_request(symbol: str) -> dict[str, Any]:
    return {
        "output": "tiles.children",
        "outputs": {"id": "tiles", "property": "children"},
        "inputs": [
            {"id": "tick", "property": "n_intervals", "value": 1},
            {"id": "symbol", "property": "value", "value": symbol},
        ],
        "changedPropIds": ["tick.n_intervals"],
    }


def _tile_values(children: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Tile id -> (label, value) as the page shows them, from the serialised components."""
    values = {}
    for tile in children:
        label, value = (c["props"]["children"] for c in tile["props"]["children"])
        values[tile["props"]["id"]] = (label, value)
    return values


def test_tiles_show_last_price_24h_change_and_trades_per_second(make_settings: Any) -> None:
    store = open_store(make_settings())
    day = 86_400
    windows = [(0, "90", 1), (600, "100", 1)]  # the close 24 h before the newest candle: 100
    windows += [(day + 600 - 10 * k, "108", 12) for k in range(1, 8)]  # the last minute + 1
    windows += [(day + 600, "110", 1)]  # newest (still open)
    store.insert_arrow(CANDLES_10S, _rows("BTCUSDT", windows, 1))
    ticker = queries.ticker(store, "BTCUSDT")
    assert ticker is not None
    assert ticker.last == 110.0
    assert ticker.change_pct == pytest.approx(10.0)
    assert ticker.change_since == T0 + timedelta(seconds=600)
    assert ticker.trades_per_s == pytest.approx(6 * 12 / 60)
    assert queries.ticker(store, "NOPE") is None

    client = create_app(store, make_settings()).server.test_client()
    _, answer, _ = post(client, _tiles_request("BTCUSDT"))
    shown = _tile_values(answer["response"]["tiles"]["children"])
    assert shown == {
        "tile-last": ("last price BTCUSDT", "110.000"),
        "tile-change": ("24 h change", "+10.00 %"),
        "tile-tps": ("trades / s", "1.2"),  # 6 windows x 12 trades in the last minute
    }, shown
    _, unknown, _ = post(client, _tiles_request("x'; DROP TABLE candles_10s --"))
    assert "—" in json.dumps(unknown["response"]["tiles"]["children"], ensure_ascii=False)


def _pipeline(client: Any) -> str:
    body = {
        "output": "..banner.children...banner.style...pipeline.children..",
        "outputs": [
            {"id": "banner", "property": "children"},
            {"id": "banner", "property": "style"},
            {"id": "pipeline", "property": "children"},
        ],
        "inputs": [{"id": "tick", "property": "n_intervals", "value": 1}],
        "changedPropIds": ["tick.n_intervals"],
    }
    code, answer, _ = post(client, body)
    assert code == 200
    return json.dumps(answer["response"], ensure_ascii=False)


def test_pipeline_panel_shows_what_status_has_and_survives_what_it_lacks(
    make_settings: Any,
) -> None:
    settings = make_settings()
    store = open_store(settings)
    full = {
        "live": True,
        "description": "LIVE Binance BTCUSDT",
        "kafka_lag": 1234,
        "spark": {"candles": {"input_rps": 41.5, "processed_rps": 800.0, "batch_ms": 230}},
        "producer": {"frames": 10, "trades": 9, "dlq": 1, "send_errors": 0},
        "feed": {"reconnects": 2, "gaps": 1, "backfilled": 57},
    }
    text = _pipeline(create_app(store, settings, lambda: full).server.test_client())
    for expected in (
        "LIVE Binance BTCUSDT",
        "#1b5e20",
        "1,234 msgs",
        "in 41.5/s · done 800.0/s · batch 230 ms",
        "producer dlq",
        "feed reconnects",
        "feed backfilled",
        "no trades yet",
    ):
        assert expected in text, expected
    bare = _pipeline(create_app(store, settings).server.test_client())
    assert "store only" in bare and "kafka lag" not in bare and "#b71c1c" in bare

    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    assert "pipeline status unavailable" in _pipeline(
        create_app(store, settings, broken).server.test_client()
    )


def test_served_over_http_with_its_stylesheet(make_settings: Any) -> None:
    settings = make_settings(dash_port=free_port())
    store = open_store(settings)
    store.insert_arrow(CANDLES_10S, _rows("BTCUSDT", [(0, "1", 1)], 1))
    server = DashServer.start(store, settings)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "_dash-layout", timeout=30) as response:
            layout = response.read().decode()
        for component in ('"banner"', '"chart"', '"symbol"', '"interval"', '"range"', '"pause"'):
            assert component in layout
        assert '"10s"' in layout
        with urllib.request.urlopen(server.url, timeout=30) as response:
            page = response.read().decode()
        assert "cryptolab.css" in page
        with urllib.request.urlopen(server.url + "assets/cryptolab.css", timeout=30) as response:
            assert b".tile" in response.read()
    finally:
        server.stop()
