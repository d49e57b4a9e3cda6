"""Bad input, fuzzed, on the dashboard: 10,000 generated callback requests through the real Dash
app over HTTP (Flask's test client, ``POST /_dash-update-component`` as the page sends it) over a
real chDB store with candles and trades.

The requests come from hypothesis runs (``frames.generate``: a new seed each run, printed and in
the row, ``FUZZ_SEED=<seed>`` replays it; no shrinking; drawn in bulk), one per kind: every
callback of the app with each input and state
replaced by valid values, any JSON value, SQL-injection-like and HTML strings, huge strings, or a
chart state (``view``) with fields of the wrong type; the URL query string (``?symbol=..&
interval=..&range=..&start=..&end=..``) likewise; and malformed bodies (invalid JSON, not an
object, unknown outputs, inputs missing or of the wrong shape). Expected: a malformed body gets
400 with a reason, anything else 200/204 with, for the chart, either candles of a symbol the
store has or an empty figure with a message; never a 500 or a traceback; the store unchanged.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import strategies as st

from cryptolab.dashboard.app import create_app
from cryptolab.dashboard.view import RANGES, available_intervals
from cryptolab.store import Store, open_store
from cryptolab.store.schema import CANDLES_10S, TRADES
from tests.integration.test_dashboard import _rows
from tests.reliability.frames import generate, json_values, seeded
from tests.reliability.results import record

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
ENDPOINT = "/_dash-update-component"
INJECTIONS = [
    "BTCUSDT' OR '1'='1",
    "BTCUSDT'; DROP TABLE trades; --",
    "x') UNION SELECT name FROM system.tables --",
    "{symbol:String}",
    "BTCUSDT\\' --",
    "BTCUSDT\x00",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%27%20OR%201%3D1",
    "1; SELECT sleep(3)",
    "btcusdt",
    " BTCUSDT ",
]
huge_text = st.integers(min_value=10_000, max_value=100_000).map(lambda n: "A" * n)
any_value = st.one_of(json_values, st.sampled_from(INJECTIONS), huge_text, st.text(max_size=40))
VALID: dict[str, Any] = {
    "symbol.value": st.sampled_from(SYMBOLS),
    "symbol.options": st.just(SYMBOLS),
    "interval.value": st.sampled_from(available_intervals()),
    "range.value": st.sampled_from(list(RANGES)),
    "custom-start.value": st.sampled_from(["2026-11-01 00:00", "", None]),
    "custom-end.value": st.sampled_from(["2026-11-01 00:10", "2026-11-01T00:05:00Z", None]),
    "paused.data": st.booleans(),
    "tick.n_intervals": st.integers(min_value=0, max_value=10**6),
    "slow-tick.n_intervals": st.integers(min_value=0, max_value=10**6),
    "pause.n_clicks": st.integers(min_value=0, max_value=10**6),
    "url.search": st.just("?symbol=BTCUSDT&interval=10s&range=1h"),
    "view.data": st.none(),
    "page-url.pathname": st.sampled_from(["/", "/market"]),
    "market-url.search": st.just("?quote=USDT&q=BTC"),
    "market-tick.n_intervals": st.integers(min_value=0, max_value=10**6),
    "market-quote.value": st.sampled_from(["USDT", "BTC", None]),
    "market-text.value": st.sampled_from(["BTC", "", None]),
    "market-state.data": st.none(),
    "market-map.clickData": st.just({"points": [{"label": "BTCUSDT"}]}),
    "market-table.sort_by": st.sampled_from(
        [
            [],
            [{"column_id": "change_24h", "direction": "desc"}],
            [{"column_id": "symbol", "direction": "asc"}],
        ]
    ),
    "market-table.page_current": st.integers(min_value=0, max_value=5) | st.none(),
}


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    names = ["symbol", "interval", "range", "start", "end", "x"]
    pairs = draw(st.lists(st.tuples(st.sampled_from(names), any_value.map(str)), max_size=6))
    from urllib.parse import urlencode

    text = "?" + urlencode(pairs)
    return text if draw(st.booleans()) else text + draw(st.sampled_from(["&&&", "%zz", "=&=", ""]))


@st.composite
def chart_states(draw: st.DrawFn) -> Any:
    """A chart state as the browser keeps it, with fields of any type."""
    state: dict[str, Any] = {
        "key": "BTCUSDT|10s|15m||",
        "symbol": "BTCUSDT",
        "interval": "10s",
        "range_key": "15m",
        "custom_start": "",
        "custom_end": "",
        "interval_s": 10,
        "range_s": 900,
        "lo_ms": 1793491200000,
        "last_ms": 1793492390000,
        "count": 90,
        "live": True,
        "last_sig": "",
    }
    if draw(st.booleans()):
        state = {"empty": "No candles", "request": {"symbol": "BTCUSDT", "interval": "10s"}}
    for key in draw(st.lists(st.sampled_from([*state, "request", "extra"]), max_size=4)):
        state[key] = draw(any_value | st.integers(min_value=-(2**63), max_value=2**63))
    return state if draw(st.integers(min_value=0, max_value=9)) else draw(any_value)


def value_for(prop: str) -> st.SearchStrategy[Any]:
    """Values the page would never send for ``prop`` (some may still happen to be valid)."""
    if prop in ("url.search", "market-url.search"):
        return st.one_of(query_strings(), any_value)
    if prop == "view.data":
        return chart_states()
    return any_value


@st.composite
def requests(draw: st.DrawFn, callbacks: dict[str, Any]) -> tuple[str, Any, bool, bool]:
    """(callback output key, JSON body, well-formed?, any value fuzzed?)"""
    key = draw(st.sampled_from(sorted(callbacks)))
    callback = callbacks[key]
    fuzzed = False

    def value(dep: dict[str, str]) -> Any:
        nonlocal fuzzed
        prop = f"{dep['id']}.{dep['property']}"
        if draw(st.booleans()):
            return draw(VALID[prop])
        fuzzed = True
        return draw(value_for(prop))

    inputs = [{**d, "value": value(d)} for d in callback["inputs"]]
    state = [{**d, "value": value(d)} for d in callback.get("state", [])]
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    outputs = [dict(zip(("id", "property"), p.rsplit(".", 1), strict=True)) for p in parts]
    changed = draw(st.lists(st.sampled_from([f"{d['id']}.{d['property']}" for d in inputs])))
    body: dict[str, Any] = {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": inputs,
        "state": state,
        "changedPropIds": changed[:2],
    }
    return key, body, True, fuzzed


@st.composite
def malformed(draw: st.DrawFn, callbacks: dict[str, Any]) -> tuple[str, Any, bool, bool]:
    key, body, _, _ = draw(requests(callbacks))
    how = draw(st.sampled_from(["drop", "retype", "unknown", "not object", "invalid JSON"]))
    if how == "drop":
        body.pop(draw(st.sampled_from(["output", "outputs", "inputs"])))
    elif how == "retype":
        field = draw(st.sampled_from(["outputs", "inputs", "state", "changedPropIds"]))
        body[field] = draw(
            st.one_of(st.integers(), st.text(max_size=5), st.just([{}]), st.just([1, 2]))
        )
    elif how == "unknown":
        body["output"] = draw(st.sampled_from(["nope.x", "..chart.figure..", "", "chart.figure"]))
    elif how == "not object":
        body = draw(st.lists(st.integers(), max_size=3) | st.integers() | st.none())
    else:
        return (
            key,
            json.dumps(body)[: draw(st.integers(min_value=0, max_value=40))] + "{",
            False,
            True,
        )
    return key, body, False, True


def fingerprint(store: Store) -> list[Any]:
    """Tables of the database and, for each, its row count and a hash of its rows."""
    tables = store.query_rows(
        "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name",
        {"db": store.database},
    )
    result: list[Any] = []
    for (name,) in tables:
        if name in (CANDLES_10S, TRADES):
            rows = store.query_rows(f"SELECT count(), sum(cityHash64(*)) FROM {store.table(name)}")
            result.append((name, rows[0]))
        else:
            result.append((name, None))
    return result


def _trades(symbol: str, count: int) -> pa.Table:
    ts = pa.timestamp("ms", tz="UTC")
    start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    dec = pa.decimal128(18, 8)
    return pa.table(
        {
            "symbol": [symbol] * count,
            "trade_id": pa.array(range(1, count + 1), pa.uint64()),
            "price": pa.array([Decimal(1000 + i) for i in range(count)], dec),
            "qty": pa.array([Decimal("0.5")] * count, dec),
            "trade_time": pa.array([start + 1000 * i for i in range(count)], ts),
            "event_time": pa.array([start + 1000 * i for i in range(count)], ts),
            "is_buyer_maker": [i % 2 == 0 for i in range(count)],
            "ingest_time": pa.array([start + 1000 * i for i in range(count)], ts),
        }
    )


def _chart_ok(response: dict[str, Any]) -> bool:
    """Candles of a symbol the store has, or an empty figure that says why."""
    figure = response.get("chart", {}).get("figure")
    if not isinstance(figure, dict):
        return False
    if figure.get("data"):
        view = response.get("view", {}).get("data")
        return isinstance(view, dict) and view.get("symbol") in SYMBOLS
    notes = [a.get("text") for a in figure.get("layout", {}).get("annotations", [])]
    return any(isinstance(n, str) and n for n in notes)


@pytest.mark.row("fuzz", "dashboard callbacks over HTTP")
def test_fuzzed_callback_requests_never_crash_the_dashboard(
    make_settings: Any, request: pytest.FixtureRequest
) -> None:
    settings = make_settings()
    store = open_store(settings)
    windows = [(10 * i, str(1000 + i), 5) for i in range(120)]
    store.insert_arrow(CANDLES_10S, _rows("BTCUSDT", windows, 1))
    store.insert_arrow(CANDLES_10S, _rows("ETHUSDT", [(0, "50", 1)], 1))
    store.insert_arrow(TRADES, _trades("BTCUSDT", 50))
    before = fingerprint(store)
    app = create_app(store, settings)
    client = app.server.test_client()
    callbacks = app.callback_map

    seed = seeded(request.node.nodeid)
    cases = generate(requests(callbacks), 9_000, seed) + generate(malformed(callbacks), 1_000, seed)
    started = time.monotonic()
    statuses: dict[int, int] = {}
    wrong: list[Any] = []
    figures = empty_or_message = crashes = 0
    for key, body, well_formed, _ in cases:
        data = body if isinstance(body, str) else json.dumps(body)
        response = client.post(ENDPOINT, data=data, content_type="application/json")
        status = response.status_code
        statuses[status] = statuses.get(status, 0) + 1
        text = response.get_data(as_text=True)
        expected = {200, 204} if well_formed else {400}
        crashes += status >= 500 or "Traceback" in text  # the app failed on this request
        if status not in expected or "Traceback" in text:
            wrong.append((status, key, data[:300], text[:300]))
            continue
        if status == 200 and key.startswith("..chart.figure"):
            answer = json.loads(text)["response"]
            figure = answer.get("chart", {}).get("figure")
            if not isinstance(figure, dict) or "__dash_patch_update" in figure:
                continue  # no_update, or a Patch for a live tick
            figures += 1
            empty_or_message += not figure.get("data")
            if not _chart_ok(answer):
                wrong.append((status, key, data[:300], text[:300]))
    seconds = time.monotonic() - started
    after = fingerprint(store)
    malformed_count = sum(not c[2] for c in cases)
    assert len(cases) >= 10_000
    assert crashes == 0, f"{crashes} answers were a 500 or a traceback"
    assert not wrong, [(*w[:2], w[3][-300:]) for w in wrong[:5]]
    assert statuses.get(400, 0) == malformed_count
    assert before == after
    record(
        "fuzz",
        "dashboard callbacks over HTTP",
        cases=len(cases),
        bad_cases=sum(c[3] for c in cases),
        malformed_bodies=malformed_count,
        in_dlq_or_quarantine="n/a (400 or a message)",
        rejected_400=statuses.get(400, 0),
        answers=", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())),
        chart_figures=figures,
        empty_with_message=empty_or_message,
        counters_match=statuses.get(400, 0) == malformed_count and not wrong,
        store_unchanged=before == after,
        crashes=crashes,
        seconds=round(seconds, 1),
    )
