"""The /market page over a real chDB store, through Dash's HTTP callback endpoint (as the page
calls it): every symbol in the first answer, then ticks that send only the cells that changed
(a Patch that rebuilds exactly what a full redraw shows), filters and hostile input that change
nothing they should not. The browser itself: tests/e2e/test_market_browser.py."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from typing import Any

import pytest

from cryptolab.batch.load import load_frames
from cryptolab.bus.broker import free_port
from cryptolab.dashboard.app import create_app
from cryptolab.dashboard.server import DashServer
from cryptolab.feeds.tapes.factor import factor_market_frames, factor_symbols
from cryptolab.store import open_store
from tests.dash_http import apply_patch, market_request, post, single_request

SYMBOLS = factor_symbols(24)


@pytest.fixture(scope="module")
def market(make_settings_module: Any) -> Iterator[dict[str, Any]]:
    settings = make_settings_module()
    store = open_store(settings)
    frames = list(factor_market_frames(SYMBOLS, 5400, 6, seed=3))
    load_frames(store, frames, "market")
    app = create_app(store, settings)
    yield {"store": store, "client": app.server.test_client(), "frames": frames}


@pytest.fixture(scope="module")
def make_settings_module(chdb_root: Any) -> Any:
    import uuid

    from cryptolab.settings import load_settings

    def make(**overrides: Any) -> Any:
        name = f"t_{uuid.uuid4().hex[:10]}"
        return load_settings(data_dir=chdb_root, clickhouse_database=name, **overrides)

    return make


def tick(client: Any, state: Any = None, **kwargs: Any) -> tuple[dict[str, Any], int]:
    status, body, size = post(client, market_request(state, **kwargs))
    assert status == 200, (status, body)
    return body["response"], size


def complete(client: Any) -> tuple[dict[str, Any], int]:
    """A full answer once the rolled-up 24 h figures are computed (in the background)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer, size = tick(client)
        if "computing" not in answer["market-summary"]["children"]:
            return answer, size
        time.sleep(0.2)
    raise AssertionError("the overview never completed")


def test_first_answer_has_every_symbol_then_nothing_changes(market: dict[str, Any]) -> None:
    answer, size = complete(market["client"])
    rows = answer["market-table"]["data"]
    assert sorted(r["name"] for r in rows) == sorted(SYMBOLS), "one page holds all 24"
    volumes = [r["vol_24h"] for r in rows]
    assert volumes == sorted(volumes, reverse=True), "busiest first"
    assert answer["market-table"]["page_count"] == 1
    btc = next(r for r in rows if r["name"] == "BTCUSDT")
    assert btc["symbol"] == "[BTCUSDT](/?symbol=BTCUSDT)" and btc["quote"] == "USDT"
    assert {o["value"] for o in answer["market-quote"]["options"]} >= {"USDT", "BTC", "FDUSD"}
    figure = answer["market-map"]["figure"]
    assert figure["data"][0]["type"] == "treemap"
    assert set(figure["data"][0]["labels"]) <= set(SYMBOLS)
    state = answer["market-state"]["data"]
    again, small = tick(market["client"], state)
    assert "market-table" not in again and "market-map" not in again, "nothing changed"
    assert small < 400 < size


BY_NAME = [{"column_id": "symbol", "direction": "asc"}]


def test_a_new_trade_arrives_as_a_small_patch(market: dict[str, Any]) -> None:
    client = market["client"]
    complete(client)
    answer, full_size = tick(client, sort_by=BY_NAME)
    rows, state = answer["market-table"]["data"], answer["market-state"]["data"]
    figure = answer["market-map"]["figure"]
    last = json.loads(market["frames"][-1])["data"]
    eth = {"stream": "ethusdt@trade",
           "data": {"e": "trade", "E": last["E"] + 2, "s": "ETHUSDT", "t": 9_000_000_001,
                    "p": "9999.00000000", "q": "1.00000000", "T": last["T"] + 1, "m": False,
                    "M": True}}  # fmt: skip
    load_frames(market["store"], [json.dumps(eth)], "new")
    patched, size = tick(client, state, sort_by=BY_NAME)
    table = patched["market-table"]["data"]
    assert table["__dash_patch_update"] == "__dash_patch_update", "a Patch, not the table"
    touched = {op["location"][0] for op in table["operations"]}
    assert touched == {[r["name"] for r in rows].index("ETHUSDT")}, "only ETHUSDT's row"
    assert size < 2_000 < full_size, (size, full_size)
    rebuilt = apply_patch({"rows": rows}, _rooted(table, "rows"))["rows"]
    fresh, _ = tick(client, sort_by=BY_NAME)  # what a new page would get
    assert rebuilt == fresh["market-table"]["data"]
    eth_row = next(r for r in rebuilt if r["name"] == "ETHUSDT")
    assert eth_row["last"] == 9999.0
    if "market-map" in patched:  # ETH's tile grew / recoloured
        tree = patched["market-map"]["figure"]
        if tree.get("__dash_patch_update"):
            assert apply_patch(figure, tree)["data"] == fresh["market-map"]["figure"]["data"]


def _rooted(patch: dict[str, Any], root: str) -> dict[str, Any]:
    """The patch's operations under ``root`` (apply_patch works on dicts)."""
    ops = [{**op, "location": [root, *op["location"]]} for op in patch["operations"]]
    return {**patch, "operations": ops}


def test_filters_sorting_and_pages(market: dict[str, Any]) -> None:
    client = market["client"]
    answer, _ = tick(client, quote="BTC", text="et", changed="market-quote.value")
    assert [r["name"] for r in answer["market-table"]["data"]] == ["ETHBTC"]
    assert answer["market-map"]["figure"]["data"][0]["labels"] == ["ETHBTC"]
    falling = [{"column_id": "chg_1h", "direction": "asc"}]
    answer, _ = tick(client, sort_by=falling, changed="market-table.sort_by")
    changes = [r["chg_1h"] for r in answer["market-table"]["data"]]
    assert changes == sorted(changes), "most fallen first"
    for page in (5, -1, "x", None):
        answer, _ = tick(client, page=page, changed="market-table.page_current")
        assert len(answer["market-table"]["data"]) == len(SYMBOLS), "out of range: page 1"
    nothing, _ = tick(client, text="ZZZZ", changed="market-text.value")
    assert nothing["market-table"]["data"] == []
    assert "No symbol matches" in json.dumps(nothing["market-map"]["figure"])


@pytest.mark.parametrize(
    "search",
    [
        "?quote=<script>alert(1)</script>&q=BTC",
        "?quote=USDT'%20OR%201=1&q=%22%20||%20{x}",
        "?q=" + "A" * 5000,
        "?quote=USDT&quote=BTC&q[]=x&" + "&".join(f"k{i}=v" for i in range(50)),
    ],
)
def test_hostile_query_strings_change_nothing(market: dict[str, Any], search: str) -> None:
    client = market["client"]
    body = {
        "output": "..market-quote.value...market-text.value..",
        "outputs": [
            {"id": "market-quote", "property": "value"},
            {"id": "market-text", "property": "value"},
        ],
        "inputs": [{"id": "market-url", "property": "search", "value": search}],
        "changedPropIds": ["market-url.search"],
    }
    status, response, _ = post(client, body)
    assert status == 200, response
    quote = response["response"]["market-quote"]["value"]
    text = response["response"]["market-text"]["value"]
    assert quote in (None, "USDT"), quote
    assert text == "" or (text.isalnum() and len(text) <= 40), text
    answer, _ = tick(client, quote=quote, text=text, changed="market-quote.value")
    assert "market-map" in answer, "the page still answers"


def test_bad_state_from_the_browser_means_a_full_redraw(market: dict[str, Any]) -> None:
    for state in ({"token": "x" * 10_000}, {"token": 5}, "garbage", [1, 2], None):
        answer, _ = tick(market["client"], state)
        assert len(answer["market-table"]["data"]) == len(SYMBOLS), state
    sort_by: Any
    for sort_by in ([{"column_id": "x' OR 1=1", "direction": "desc"}], "volume", [{}], [5]):
        answer, _ = tick(market["client"], sort_by=sort_by, changed="market-table.sort_by")
        volumes = [r["vol_24h"] for r in answer["market-table"]["data"]]
        assert volumes == sorted(volumes, reverse=True), ("unknown sort: by volume", sort_by)


def test_the_page_route_and_the_chart_link(market: dict[str, Any]) -> None:
    client = market["client"]
    route = single_request(("page", "children"), [("page-url", "pathname", "/market")])
    status, response, _ = post(client, route)
    assert status == 200 and "market-table" in json.dumps(response)
    status, response, _ = post(
        client, single_request(("page", "children"), [("page-url", "pathname", "/")])
    )
    assert status in (200, 204) and not response.get("response"), "the chart page is there"
    click = single_request(
        ("market-go", "href"), [("market-map", "clickData", {"points": [{"label": "ETHUSDT"}]})]
    )
    status, response, _ = post(client, click)
    assert response["response"]["market-go"]["href"] == "/?symbol=ETHUSDT"
    bad = single_request(
        ("market-go", "href"),
        [("market-map", "clickData", {"points": [{"label": "javascript:alert(1)"}]})],
    )
    status, response, _ = post(client, bad)
    assert status in (200, 204) and not response.get("response"), response


def test_market_page_needs_the_password_too(make_settings_module: Any) -> None:
    settings = make_settings_module(
        dash_port=free_port(),
        dash_user="viewer",
        dash_password="s3cret-market",  # pragma: allowlist secret
    )
    server = DashServer.start(open_store(settings), settings)
    try:
        url = server.url + "market"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=30)
        assert refused.value.code == 401
        request = urllib.request.Request(url)
        token = b64encode(b"viewer:s3cret-market").decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        body = json.dumps(market_request()).encode()
        update = urllib.request.Request(
            server.url + "_dash-update-component",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(update, timeout=30)
        assert refused.value.code == 401
    finally:
        server.stop()
