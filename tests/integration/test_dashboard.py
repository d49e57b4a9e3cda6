"""The minimal dashboard over a real store, through Dash's HTTP endpoints."""

import json
import urllib.request
from typing import Any

import pyarrow as pa

from cryptolab.bus.broker import free_port
from cryptolab.dashboard.server import DashServer
from cryptolab.store import open_store
from cryptolab.store.schema import CANDLES_10S
from tests.integration.test_store import _candles


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _chart_request(symbol: str) -> dict[str, Any]:
    return {
        "output": "..chart.figure...last-price.children...pipeline.children..",
        "outputs": [
            {"id": "chart", "property": "figure"},
            {"id": "last-price", "property": "children"},
            {"id": "pipeline", "property": "children"},
        ],
        "inputs": [
            {"id": "tick", "property": "n_intervals", "value": 1},
            {"id": "symbol", "property": "value", "value": symbol},
        ],
        "changedPropIds": ["tick.n_intervals"],
    }


def test_dashboard_serves_candles_and_shrugs_off_hostile_input(make_settings: Any) -> None:
    settings = make_settings(dash_port=free_port())
    store = open_store(settings)
    table: pa.Table = _candles("BTCUSDT", [0, 10, 20, 30], "97000.5", 1)
    store.insert_arrow(CANDLES_10S, table)
    server = DashServer.start(store, settings)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "_dash-layout", timeout=30) as response:
            layout = response.read().decode()
        assert '"banner"' in layout and '"chart"' in layout
        answer = _post(server.url + "_dash-update-component", _chart_request("BTCUSDT"))
        figure = answer["response"]["chart"]["figure"]
        candle = next(t for t in figure["data"] if t["type"] == "candlestick")
        assert len(candle["x"]) == 4
        assert answer["response"]["last-price"]["children"].startswith("BTCUSDT 97000.5")
        hostile = _post(
            server.url + "_dash-update-component",
            _chart_request("x' OR 1=1; DROP TABLE candles_10s --"),
        )
        text = json.dumps(hostile["response"]["chart"]["figure"])
        assert "No candles for" in text
        assert (
            len(open_store(settings).query_rows(f"SELECT * FROM {store.table(CANDLES_10S)}")) == 4
        )
    finally:
        server.stop()
