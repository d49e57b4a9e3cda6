"""Talk to a Dash app the way its browser page does: POST /_dash-update-component.

Also applies a Dash ``Patch`` (as sent over the wire) to a figure, like dash-renderer does, so a
test can check that live patches build exactly the figure a full redraw would.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

CHART_OUTPUTS = [("chart", "figure"), ("view", "data"), ("chart-stats", "children")]
CHART_INPUTS = ["tick", "symbol", "interval", "range", "custom-start", "custom-end", "paused"]
INPUT_PROPS = {
    "tick": "n_intervals",
    "symbol": "value",
    "interval": "value",
    "range": "value",
    "custom-start": "value",
    "custom-end": "value",
    "paused": "data",
}


def chart_request(
    symbol: Any,
    interval: str = "10s",
    range_key: str = "15m",
    start: str | None = None,
    end: str | None = None,
    paused: bool = False,
    state: Any = None,
    changed: str = "symbol",
) -> dict[str, Any]:
    values = {
        "tick": 1,
        "symbol": symbol,
        "interval": interval,
        "range": range_key,
        "custom-start": start,
        "custom-end": end,
        "paused": paused,
    }
    return {
        "output": ".." + "...".join(f"{c}.{p}" for c, p in CHART_OUTPUTS) + "..",
        "outputs": [{"id": c, "property": p} for c, p in CHART_OUTPUTS],
        "inputs": [
            {"id": name, "property": INPUT_PROPS[name], "value": values[name]}
            for name in CHART_INPUTS
        ],
        "state": [{"id": "view", "property": "data", "value": state}],
        "changedPropIds": [f"{changed}.{INPUT_PROPS[changed]}"],
    }


def post(client: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any], int]:
    """(status code, decoded response, response bytes) through a Flask test client."""
    response = client.post("/_dash-update-component", json=body)
    raw = response.get_data()
    return response.status_code, (orjson.loads(raw) if raw else {}), len(raw)


def apply_patch(figure: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply the operations of a serialised ``dash.Patch`` to a copy of ``figure``."""
    assert patch.get("__dash_patch_update") == "__dash_patch_update", "not a Patch"
    result = copy.deepcopy(figure)
    for op in patch["operations"]:
        *path, last = op["location"]
        target: Any = result
        for key in path:
            target = target[key]
        name, value = op["operation"], op["params"].get("value")
        if name == "Assign":
            target[last] = value
        elif name == "Delete":
            del target[last]
        elif name == "Extend":
            target[last].extend(value)
        elif name == "Append":
            target[last].append(value)
        else:
            raise AssertionError(f"unexpected patch operation {name}")
    return result


MARKET_OUTPUTS = [
    ("market-table", "data"),
    ("market-table", "page_count"),
    ("market-map", "figure"),
    ("market-state", "data"),
    ("market-summary", "children"),
    ("market-quote", "options"),
]


def market_request(
    state: Any = None,
    quote: Any = None,
    text: Any = None,
    sort_by: Any = None,
    page: Any = 0,
    changed: str = "market-tick.n_intervals",
) -> dict[str, Any]:
    """The body the /market page posts every tick (or when a filter, the sort or the page
    changes)."""
    sort_by = sort_by if sort_by is not None else [{"column_id": "vol_24h", "direction": "desc"}]
    inputs = [
        ("market-tick", "n_intervals", 1),
        ("market-quote", "value", quote),
        ("market-text", "value", text),
        ("market-table", "sort_by", sort_by),
        ("market-table", "page_current", page),
    ]
    return {
        "output": ".." + "...".join(f"{c}.{p}" for c, p in MARKET_OUTPUTS) + "..",
        "outputs": [{"id": c, "property": p} for c, p in MARKET_OUTPUTS],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": "market-state", "property": "data", "value": state}],
        "changedPropIds": [changed],
    }


def single_request(output: tuple[str, str], inputs: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """The body of a callback with one output and no state."""
    return {
        "output": f"{output[0]}.{output[1]}",
        "outputs": {"id": output[0], "property": output[1]},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"],
    }
