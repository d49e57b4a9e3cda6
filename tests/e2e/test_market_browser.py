"""The /market page in headless Chromium over a real chDB store: every symbol's row (page by
page), sorting, filters, click-through to the chart, a live update that arrives as a small
Patch, and hostile query strings that change nothing.

The store is filled by the batch loader (the real parser and candle definition) from a
synthetic market of 70 symbols; "live" trades are loaded the same way while the page is open.
The Kafka -> Spark path is the chart's browser test's business (test_dashboard_browser.py).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cryptolab.batch.load import load_frames
from cryptolab.bus.broker import free_port
from cryptolab.dashboard.server import DashServer
from cryptolab.feeds.tapes.factor import factor_market_frames, factor_symbols
from cryptolab.store import open_store
from tests.browser import CHART_DATA_JS, launch

SYMBOLS = factor_symbols(70)
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
ROWS_JS = """() => Array.from(document.querySelectorAll('#market-table tbody tr'))
  .map(tr => {
    const cell = c => tr.querySelector(`td[data-dash-column="${c}"]`);
    if (!cell('symbol')) return null;
    return {symbol: cell('symbol').innerText.trim(), last: cell('last').innerText.trim(),
            chg_24h: cell('chg_24h').innerText.trim(), quote: cell('quote').innerText.trim()};
  }).filter(r => r)"""
RECORD_JS = """(() => {
  window.__bodies = [];
  const original = window.fetch;
  window.fetch = async (...args) => {
    const response = await original(...args);
    const url = typeof args[0] === 'string' ? args[0] : args[0].url;
    if (url.includes('_dash-update-component')) {
      response.clone().text().then(text => window.__bodies.push(text));
    }
    return response;
  };
})()"""


@pytest.fixture(scope="module")
def served(make_module_settings: Any) -> Iterator[dict[str, Any]]:
    settings = make_module_settings(dash_port=free_port())
    store = open_store(settings)
    frames = list(factor_market_frames(SYMBOLS, 5400, 8, seed=11))
    load_frames(store, frames, "market")
    server = DashServer.start(store, settings)
    yield {"url": server.url, "store": store, "frames": frames}
    server.stop()


@pytest.fixture(scope="module")
def make_module_settings(chdb_root: Path) -> Callable[..., Any]:
    import uuid

    from cryptolab.settings import load_settings

    def make(**overrides: Any) -> Any:
        database = f"t_{uuid.uuid4().hex[:10]}"
        return load_settings(data_dir=chdb_root, clickhouse_database=database, **overrides)

    return make


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, served: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path_factory.mktemp("chromium-profile"))
        tab = context.new_page()
        tab.dialogs = []
        tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
        tab.add_init_script(RECORD_JS)
        tab.goto(served["url"] + "market")
        yield tab
        context.close()


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def rows(page: Any) -> list[dict[str, str]]:
    return list(page.evaluate(ROWS_JS))


def complete(page: Any, any_rows: bool = True) -> list[dict[str, str]]:
    """The rows once the 24 h figures are computed (the summary says so); ``any_rows`` waits
    for at least one (a filter may match none)."""
    wait_until(
        lambda: (
            "symbols" in page.inner_text("#market-summary")
            and "computing" not in page.inner_text("#market-summary")
        ),
        90,
        "the complete overview",
    )
    if not any_rows:
        time.sleep(1)
        return rows(page)
    return wait_until(lambda: rows(page), 30, "table rows")


def percent(text: str) -> float:
    clean = text.replace("%", "").replace("+", "").replace(",", "").replace("\u2212", "-")
    return float(clean.strip())


def test_every_symbol_has_a_row_page_by_page(page: Any) -> None:
    first = complete(page)
    assert len(first) == 50, "one page of 50"
    seen = [r["symbol"] for r in first]
    page.click("#market-table button.next-page")
    second = wait_until(
        lambda: (r := rows(page)) and r[0]["symbol"] not in seen and r, 30, "page 2"
    )
    seen += [r["symbol"] for r in second]
    assert sorted(seen) == sorted(SYMBOLS)
    page.click("#market-table button.first-page")
    wait_until(lambda: rows(page) and rows(page)[0]["symbol"] == first[0]["symbol"], 30, "page 1")
    assert page.locator("#market-map .js-plotly-plot").count() == 1, "the treemap is drawn"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "market.png"), full_page=True)
    assert not page.dialogs


def test_sorting_by_24h_change(page: Any) -> None:
    complete(page)
    header = page.locator('#market-table th[data-dash-column="chg_24h"] .column-header--sort')
    header.click()  # the first click sorts ascending

    def ascending() -> list[float] | None:
        values = [percent(r["chg_24h"]) for r in rows(page) if r["chg_24h"]]
        return values if len(values) > 10 and values == sorted(values) else None

    low = wait_until(ascending, 30, "rows by 24 h change, ascending")
    header.click()

    def descending() -> list[float] | None:
        values = [percent(r["chg_24h"]) for r in rows(page) if r["chg_24h"]]
        return values if len(values) > 10 and values == sorted(values, reverse=True) else None

    high = wait_until(descending, 30, "rows by 24 h change, descending")
    assert high[0] > low[0]


def test_filters_by_quote_asset_and_text(page: Any) -> None:
    complete(page)
    page.click("#market-quote")
    page.get_by_role("option", name=re.compile(r"^BTC \(\d+\)$")).click()
    wanted = sorted(s for s in SYMBOLS if s.endswith("BTC"))
    wait_until(lambda: sorted(r["symbol"] for r in rows(page)) == wanted, 30, "BTC pairs only")
    page.fill("#market-text", "eth")
    wait_until(lambda: [r["symbol"] for r in rows(page)] == ["ETHBTC"], 30, "ETHBTC only")
    page.fill("#market-text", "")
    page.locator("#market-quote .dash-dropdown-clear, #market-quote .Select-clear").first.click()
    wait_until(lambda: len(rows(page)) == 50, 30, "every symbol again")


def test_a_live_trade_arrives_as_a_patch(page: Any, served: dict[str, Any]) -> None:
    complete(page)
    page.locator('#market-table th[data-dash-column="symbol"] .column-header--sort').click()
    wait_until(lambda: rows(page)[0]["symbol"] == min(SYMBOLS), 30, "rows by name")
    assert any(r["symbol"] == "DOGEUSDT" for r in rows(page)), "DOGEUSDT on the first page"
    time.sleep(2)
    page.evaluate("() => window.__bodies.splice(0)")
    last = json.loads(served["frames"][-1])["data"]
    frame = {"stream": "dogeusdt@trade",
             "data": {"e": "trade", "E": last["E"] + 3, "s": "DOGEUSDT", "t": 8_000_000_001,
                      "p": "1234.50000000", "q": "2.00000000", "T": last["T"] + 2, "m": False,
                      "M": True}}  # fmt: skip
    load_frames(served["store"], [json.dumps(frame)], "live")
    doge = lambda: next(r for r in rows(page) if r["symbol"] == "DOGEUSDT")  # noqa: E731
    wait_until(lambda: doge()["last"] == "1,234.5", 30, "the new last price")
    bodies = page.evaluate("() => window.__bodies.splice(0)")
    tables = [b for b in bodies if '"market-table"' in b and '"data"' in b]
    assert tables, f"no table update among {len(bodies)} responses"
    assert all("__dash_patch_update" in b for b in tables), [b[:200] for b in tables]
    assert max(len(b) for b in tables) < 3_000, [len(b) for b in tables]
    assert len(rows(page)) == 50, "the other rows are still there"


def test_clicking_a_symbol_opens_its_chart(page: Any, served: dict[str, Any]) -> None:
    complete(page)
    page.fill("#market-text", "SOLUSDT")
    wait_until(lambda: [r["symbol"] for r in rows(page)] == ["SOLUSDT"], 30, "SOLUSDT")
    page.click('#market-table td[data-dash-column="symbol"] a')
    wait_until(lambda: page.url.endswith("/?symbol=SOLUSDT"), 30, "the chart URL")

    def chart_of_sol() -> Any:
        data = page.evaluate(CHART_DATA_JS)
        return data if data and data["name"] == "SOLUSDT" and data["x"] else None

    wait_until(chart_of_sol, 60, "SOLUSDT candles on the chart")
    page.click("text=market overview →")
    wait_until(lambda: page.url.endswith("/market") and rows(page), 30, "back on /market")


@pytest.mark.parametrize(
    "search",
    [
        "?quote=<script>alert(1)</script>&q=<img src=x onerror=alert(2)>",
        "?q=" + quote('" || {name} contains "') + "&quote=USDT'--",
        "?q=" + "B" * 3000,
        "?" + "&".join(f"x{i}=1" for i in range(40)),
    ],
)
def test_hostile_query_strings_change_nothing(
    page: Any, served: dict[str, Any], search: str
) -> None:
    page.goto(served["url"] + "market" + search)
    shown = complete(page, any_rows=False)
    assert page.locator("img[src='x']").count() == 0
    assert not page.dialogs, page.dialogs
    text = page.input_value("#market-text")
    assert text == "" or (text.isalnum() and len(text) <= 40), text
    assert all(re.fullmatch(r"[A-Z0-9]+", r["symbol"]) for r in shown)
    assert all(text in r["symbol"] for r in shown), "filtered by the cleaned text"
    page.goto(served["url"] + "market")
    assert len(complete(page)) == 50
