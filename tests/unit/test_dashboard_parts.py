"""Dashboard pieces without a store: intervals, user times, the live Patch, the panel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.io
import pytest

from cryptolab.bus.broker import free_port, port_in_use
from cryptolab.dashboard import figures, panel, view
from cryptolab.store import queries
from tests.dash_http import apply_patch


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("1m", 60), ("15m", 900), ("1h", 3600), ("1d", 86400), ("10", None), ("m", None)],
)
def test_interval_seconds(text: str, seconds: int | None) -> None:
    assert view.interval_seconds(text) == seconds


def test_the_interval_choices_follow_the_store_query_module(monkeypatch: Any) -> None:
    assert view.available_intervals() == list(queries.INTERVALS)
    monkeypatch.setattr(queries, "INTERVALS", ("1h", "10s", "5m", "1m"))
    assert view.available_intervals() == ["10s", "1m", "5m", "1h"]


def test_user_times_are_utc_and_bad_ones_say_how_to_write_them() -> None:
    assert view.parse_time("2026-11-01 00:05") == datetime(2026, 11, 1, 0, 5, tzinfo=UTC)
    assert view.parse_time("2026-11-01T00:05:00Z") == datetime(2026, 11, 1, 0, 5, tzinfo=UTC)
    shifted = view.parse_time("2026-11-01T02:05:00+02:00")
    assert shifted == datetime(2026, 11, 1, 0, 5, tzinfo=UTC)
    assert shifted is not None and shifted.tzinfo == UTC
    assert view.parse_time("  ") is None and view.parse_time(None) is None
    with pytest.raises(ValueError, match=r"not an ISO 8601 time.*e\.g\. 2026-11-01"):
        view.parse_time("next tuesday")


def _candles(starts: list[int], closes: list[float]) -> pd.DataFrame:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    return pd.DataFrame(
        {
            "window_start": [t0 + timedelta(seconds=s) for s in starts],
            "open": [Decimal(str(c - 1)) for c in closes],
            "high": [Decimal(str(c + 1)) for c in closes],
            "low": [Decimal(str(c - 2)) for c in closes],
            "close": [Decimal(str(c)) for c in closes],
            "volume": [Decimal(4)] * len(starts),
            "buy_volume": [Decimal(1)] * len(starts),
            "vwap": closes,
        }
    )


def _json(figure: dict[str, Any]) -> dict[str, Any]:
    """The figure as the browser receives it (through Plotly's JSON encoder)."""
    return dict(json.loads(plotly.io.to_json(figure, validate=False)))


def test_a_patch_drops_replaces_and_appends_exactly_like_a_redraw() -> None:
    shown = figures.candle_figure(_candles([0, 10, 20, 30], [1, 2, 3, 4]), "BTCUSDT")
    fresh = _candles([30, 40, 50], [40, 5, 6])  # the open candle changed, two new ones
    patch = figures.candle_patch(fresh, trim=2, replaced=1, shown=4)
    result = apply_patch(_json(shown), patch.to_plotly_json())
    expected = _json(figures.candle_figure(_candles([20, 30, 40, 50], [3, 40, 5, 6]), "BTCUSDT"))
    assert [t["x"] for t in result["data"]] == [t["x"] for t in expected["data"]]
    assert result["data"][0]["close"] == [3.0, 40.0, 5.0, 6.0]
    assert [t.get("y") for t in result["data"]] == [t.get("y") for t in expected["data"]]


def test_figure_arrays_are_plain_lists_so_patches_can_edit_them() -> None:
    data = _json(figures.candle_figure(_candles([0, 10], [1, 2]), "X"))["data"]
    for trace in data:
        for field in ("x", "y", "open", "close"):
            if field in trace:
                assert isinstance(trace[field], list), (trace["type"], field)


def test_empty_figure_shows_user_text_as_text() -> None:
    figure = figures.empty_figure("No candles for '<img src=x onerror=alert(1)>'")
    assert figure["layout"]["annotations"][0]["text"] == (
        "No candles for '&lt;img src=x onerror=alert(1)&gt;'"
    )


def test_pipeline_panel_skips_what_is_missing_or_malformed() -> None:
    assert panel.pipeline_cells({"live": True, "description": "x"}) == []
    cells = panel.pipeline_cells(
        {
            "kafka_lag": None,  # not measured yet
            "spark": "not a mapping",
            "producer": {"trades": 5, "flag": True, "name": "x"},
            "feed": {"reconnects": 0},
        }
    )
    assert [getattr(c, "id", None) for c in cells] == [
        "metric-producer-trades",
        "metric-feed-reconnects",
    ]


def test_prices_and_ages_read_like_a_trading_screen() -> None:
    assert panel.format_price(97012.345) == "97,012.35"
    assert panel.format_price(3600.1) == "3,600.10"
    assert panel.format_price(0.123456789) == "0.123457"
    now = datetime(2026, 11, 1, tzinfo=UTC)
    fresh = panel.freshness_cell(now - timedelta(seconds=1.5), now)
    stale = panel.freshness_cell(now - timedelta(hours=3), now)
    assert "1.5 s" in json.dumps(fresh.to_plotly_json(), default=str)
    assert "3.0 h" in json.dumps(stale.to_plotly_json(), default=str)


def test_a_url_search_that_is_not_text_means_no_query() -> None:
    """Found by tests/reliability/test_fuzz_dashboard.py: a list crashed the callback (500)."""
    from cryptolab.dashboard.app import _url_params

    assert _url_params(["?symbol=BTCUSDT"]) == {}
    assert _url_params({"symbol": "BTCUSDT"}) == {}
    assert _url_params("?symbol=ETHUSDT&range=1h") == {"symbol": "ETHUSDT", "range": "1h"}


def test_malformed_callback_bodies_are_named_not_dispatched() -> None:
    """Found by tests/reliability/test_fuzz_dashboard.py: Dash answered these with a 500."""
    from cryptolab.dashboard.guard import body_problem

    callbacks = {
        "custom-box.style": {"inputs": [{"id": "range", "property": "value"}], "state": []}
    }
    good = {
        "output": "custom-box.style",
        "outputs": {"id": "custom-box", "property": "style"},
        "inputs": [{"id": "range", "property": "value", "value": "custom"}],
        "changedPropIds": ["range.value"],
    }
    assert body_problem(callbacks, good) is None
    assert body_problem(callbacks, [good]) == "the body must be a JSON object"
    assert body_problem(callbacks, {**good, "output": "chart.figure"}) == "unknown callback output"
    assert "inputs" in str(body_problem(callbacks, {**good, "inputs": 5}))
    assert "inputs" in str(body_problem(callbacks, {**good, "inputs": [{}]}))
    assert "outputs" in str(
        body_problem(callbacks, {k: v for k, v in good.items() if k != "outputs"})
    )
    assert "changedPropIds" in str(body_problem(callbacks, {**good, "changedPropIds": [{}]}))


def test_the_notebook_dashboard_refuses_an_unguarded_public_binding(tmp_path: Path) -> None:
    """lab.show_dashboard (notebook 01) goes through the same binding rule as `cryptolab up`:
    0.0.0.0 without a password is refused before anything listens."""
    from types import SimpleNamespace

    from cryptolab import lab
    from cryptolab.errors import ConfigError
    from cryptolab.settings import load_settings

    exposed = load_settings(data_dir=tmp_path, dash_host="0.0.0.0", dash_port=free_port())
    stack = SimpleNamespace(store=object(), settings=exposed, snapshot=dict)
    with pytest.raises(ConfigError, match="CRYPTOLAB_DASH_PASSWORD"):
        lab.show_dashboard(stack)  # type: ignore[arg-type]
    assert not port_in_use(exposed.dash_port)
