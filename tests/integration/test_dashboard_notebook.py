"""`cryptolab.dashboard.show` in a real Jupyter kernel: the output cell embeds the dashboard
(Dash's own jupyter_mode), and the kernel serves it with candles from its own store."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cryptolab.bus.broker import free_port
from cryptolab.dashboard import show
from cryptolab.errors import CryptolabError
from cryptolab.settings import load_settings

SETUP = """
from datetime import UTC, datetime
from cryptolab.dashboard import show
from cryptolab.settings import load_settings
from cryptolab.store import open_store
settings = load_settings(data_dir={data_dir!r}, dash_port={port})
store = open_store(settings)
store.command(
    "INSERT INTO crypto.candles_10s (symbol, window_start, window_end, open, high, low, close, "
    "volume, quote_volume, vwap, trades, buy_volume, first_trade_id, last_trade_id, updated_at) "
    "SELECT 'BTCUSDT', toDateTime64('2026-11-01 00:00:00', 3, 'UTC') + number * 10, "
    "toDateTime64('2026-11-01 00:00:10', 3, 'UTC') + number * 10, 100, 101, 99, 100 + number, "
    "1, 100, 100, 3, 0.5, 1, 3, now64(3) FROM numbers(7)"
)
app = show(store, settings, mode="inline")
"""

CHECK = """
import json, urllib.request
body = {{
    "output": "..chart.figure...view.data...chart-stats.children..",
    "outputs": [{{"id": "chart", "property": "figure"}}, {{"id": "view", "property": "data"}},
                {{"id": "chart-stats", "property": "children"}}],
    "inputs": [{{"id": "tick", "property": "n_intervals", "value": 1}},
               {{"id": "symbol", "property": "value", "value": "BTCUSDT"}},
               {{"id": "interval", "property": "value", "value": "10s"}},
               {{"id": "range", "property": "value", "value": "15m"}},
               {{"id": "custom-start", "property": "value", "value": None}},
               {{"id": "custom-end", "property": "value", "value": None}},
               {{"id": "paused", "property": "data", "value": False}}],
    "state": [{{"id": "view", "property": "data", "value": None}}],
    "changedPropIds": ["symbol.value"],
}}
request = urllib.request.Request(
    "http://127.0.0.1:{port}/_dash-update-component", data=json.dumps(body).encode(),
    headers={{"Content-Type": "application/json"}},
)
figure = json.load(urllib.request.urlopen(request, timeout=30))["response"]["chart"]["figure"]
print("closes", figure["data"][0]["close"])
"""


def test_show_embeds_the_dashboard_in_a_notebook_cell(tmp_path: Path) -> None:
    port = free_port()
    setup = SETUP.format(data_dir=str(tmp_path / "nb"), port=port)
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(textwrap.dedent(setup)),
            nbformat.v4.new_code_cell(textwrap.dedent(CHECK.format(port=port))),
        ]
    )
    NotebookClient(notebook, timeout=180, kernel_name="python3").execute()
    shown = notebook.cells[0].outputs
    html = " ".join(str(o.get("data", {}).get("text/html", "")) for o in shown)
    assert "<iframe" in html and f"http://127.0.0.1:{port}/" in html, shown
    printed = "".join(o.get("text", "") for o in notebook.cells[1].outputs)
    assert "closes [100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0]" in printed, printed


def test_show_outside_a_notebook_says_what_to_do() -> None:
    with pytest.raises(CryptolabError, match="cryptolab dash"):
        show(None, load_settings(), mode="inline")  # type: ignore[arg-type]
    with pytest.raises(CryptolabError, match="unknown mode"):
        show(None, load_settings(), mode="popup")  # type: ignore[arg-type]
