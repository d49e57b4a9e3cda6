"""The dashboard in headless Chromium, over `cryptolab up` replaying a tape in real time (4x).

One `cryptolab up` process (real Kafka, Spark, chDB) serves the dashboard for the whole module;
the tests drive one browser page the way a user would: look, wait for live candles, pause,
switch symbol, interval and range, and paste a hostile symbol into the URL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cryptolab.bus.broker import free_port
from cryptolab.dashboard.view import available_intervals, interval_seconds
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.browser import CHART_DATA_JS, launch
from tests.e2e.test_up import environment
from tests.reference import reference_candles, tape_trades

SPEED = 4
START_TIMEOUT = 240


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[dict[str, Any]]:
    """`cryptolab up --source replay --speed 4` with its dashboard on a free port."""
    root = tmp_path_factory.mktemp("browser")
    tape = root / "tape.jsonl.gz"
    write_frames(tape, synth_frames(["BTCUSDT", "ETHUSDT"], 1500, 5, seed=31))
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    env = environment(
        root / "data",
        CRYPTOLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CRYPTOLAB_TOPIC=f"t_{tag}",
        CRYPTOLAB_DLQ_TOPIC=f"dlq_{tag}",
    )
    log = (root / "up.log").open("w")
    args = ["up", "--source", "replay", "--tape", str(tape), "--speed", str(SPEED)]
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptolab", *args, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_server(url, process, root / "up.log")
        yield {"url": url, "reference": reference_candles(tape_trades(tape))}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for_server(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"cryptolab up exited:\n{log.read_text()[-4000:]}"
        try:
            with urllib.request.urlopen(url + "_dash-layout", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(
        f"no dashboard at {url} after {START_TIMEOUT} s:\n{log.read_text()[-4000:]}"
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path_factory.mktemp("chromium-profile"))
        yield context
        context.close()


@pytest.fixture(scope="module")
def page(browser: Any, up: dict[str, Any]) -> Iterator[Any]:
    page = browser.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.add_init_script(RECORD_RESPONSES_JS)
    page.goto(up["url"])
    yield page
    page.close()


RECORD_RESPONSES_JS = """(() => {
  window.__dashBodies = [];
  const original = window.fetch;
  window.fetch = async (...args) => {
    const response = await original(...args);
    const url = typeof args[0] === 'string' ? args[0] : args[0].url;
    if (url.includes('_dash-update-component')) {
      response.clone().text().then(text => window.__dashBodies.push(text));
    }
    return response;
  };
})()"""
"""Runs in the page before Dash: keeps the body of every callback response it receives."""


def responses(page: Any) -> list[str]:
    """Callback response bodies the page received since the last call."""
    return list(page.evaluate("() => window.__dashBodies.splice(0)"))


def chart(page: Any) -> dict[str, Any] | None:
    return page.evaluate(CHART_DATA_JS)


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def candles_at_least(page: Any, n: int, symbol: str | None = None) -> dict[str, Any] | None:
    data = chart(page)
    if data and len(data["x"]) >= n and (symbol is None or data["name"] == symbol):
        return data
    return None


def newer_than(page: Any, before: dict[str, Any], windows: int) -> dict[str, Any] | None:
    """The chart once its newest candle is ``windows`` 10 s windows after ``before``'s."""
    data = chart(page)
    if data and data["x"] and data["x"][-1] >= before["x"][-1] + windows * 10_000:
        return data
    return None


def _ms(x: int | str) -> int:
    """A chart x value (epoch ms, or a date string as Plotly would also take) -> epoch ms."""
    if isinstance(x, int | float):
        return int(x)
    return int(datetime.fromisoformat(x).replace(tzinfo=UTC).timestamp() * 1000)


def _typed(x: int) -> str:
    """How a user types that time into the custom range box."""
    return datetime.fromtimestamp(x / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def assert_matches_reference(data: dict[str, Any], reference: dict[Any, Any]) -> None:
    """Every candle but the newest (still open) equals the independent pandas computation."""
    symbol = data["name"]
    for i, x in enumerate(data["x"][:-1]):
        expected = reference[(symbol, _ms(x))]
        for field in ("open", "high", "low", "close"):
            assert data[field][i] == pytest.approx(float(expected[field]), rel=1e-12), (x, field)


def test_page_loads_and_shows_the_replayed_candles(page: Any, up: dict[str, Any]) -> None:
    data = wait_until(lambda: candles_at_least(page, 4), 180, "candles on the chart")
    assert data["name"] == "BTCUSDT" and data["traces"] == 4
    assert "REPLAY" in page.inner_text("#banner")
    assert_matches_reference(data, up["reference"])
    assert page.inner_text("#tile-last .tile-value") not in ("", "—")
    assert "query" in page.inner_text("#chart-stats")
    for metric in ("freshness", "kafka-lag", "spark-stream", "producer-trades"):
        assert page.locator(f"#metric-{metric}").count() == 1, metric
    assert not page.dialogs


def test_live_updates_add_candles_with_patches(page: Any, up: dict[str, Any]) -> None:
    before = wait_until(lambda: candles_at_least(page, 1), 60, "candles")
    responses(page)
    after = wait_until(lambda: newer_than(page, before, 2), 60, "two more live candles")
    bodies = responses(page)
    closes = dict(zip(after["x"], after["close"], strict=True))
    final = [(x, c) for x, c in zip(before["x"][:-1], before["close"], strict=False) if x in closes]
    assert final, "the older candles are still shown"
    assert all(closes[x] == c for x, c in final), "final candles do not change"
    charts = [body for body in bodies if '"chart":' in body]
    assert charts, f"no chart updates among {len(bodies)} responses"
    redraws = [body[:300] for body in charts if '"chart":{"figure":{"data"' in body]
    assert not redraws, f"live ticks redrew the whole figure: {redraws}"
    assert all("__dash_patch_update" in body for body in charts)
    assert_matches_reference(after, up["reference"])


def test_pause_freezes_the_chart_and_resume_catches_up(page: Any) -> None:
    page.click("#pause")
    wait_until(lambda: "Resume" in page.inner_text("#pause"), 10, "the Resume button")
    time.sleep(2)  # a tick already in flight may still land
    frozen = chart(page)
    assert frozen is not None, "no chart data before pausing"
    time.sleep(4 * 10 / SPEED)  # four candles' worth of tape
    assert chart(page) == frozen
    page.click("#pause")
    wait_until(lambda: newer_than(page, frozen, 2), 30, "catching up")


def test_custom_range_shows_exactly_that_range(page: Any, up: dict[str, Any]) -> None:
    data = wait_until(lambda: candles_at_least(page, 6), 60, "six candles")
    start, end = _typed(data["x"][1]), _typed(data["x"][4])
    page.locator("#range label", has_text="custom").click()
    page.fill("#custom-start", start)
    page.press("#custom-start", "Enter")
    page.fill("#custom-end", end)
    page.press("#custom-end", "Enter")
    shown = wait_until(
        lambda: (c := chart(page)) and c["x"] == data["x"][1:4] and c,
        20,
        f"the custom range {start} .. {end}",
    )
    assert_matches_reference({**shown, "x": [*shown["x"], 0]}, up["reference"])
    page.fill("#custom-end", "2020-01-01 00:00")
    page.press("#custom-end", "Enter")
    wait_until(lambda: "Empty range" in page.inner_text("#chart"), 20, "the empty-range message")
    page.locator("#range label", has_text="15m").click()
    wait_until(lambda: candles_at_least(page, 6), 20, "the live range again")


def test_switching_symbol_shows_that_symbols_candles(page: Any, up: dict[str, Any]) -> None:
    btc = wait_until(lambda: candles_at_least(page, 2, "BTCUSDT"), 30, "BTCUSDT candles")
    page.click("#symbol")
    page.get_by_role("option", name="ETHUSDT").click()
    eth = wait_until(lambda: candles_at_least(page, 2, "ETHUSDT"), 30, "ETHUSDT candles")
    assert max(eth["high"]) < min(btc["low"])  # ~3,600 against ~97,000
    # the tiles refresh on their own callback: they follow within a tick or two
    wait_until(
        lambda: "ETHUSDT" in page.inner_text("#tile-last"), 10, "the ETHUSDT last-price tile"
    )
    assert_matches_reference(eth, up["reference"])


def test_switching_interval_changes_the_candle_width(page: Any) -> None:
    intervals = available_intervals()
    assert len(intervals) >= 2, f"the dashboard offers one interval only: {intervals}"
    wider = intervals[1]
    page.locator("#interval label", has_text=wider).first.click()
    step_ms = (interval_seconds(wider) or 0) * 1000

    def spaced() -> bool:
        data = chart(page)
        if not data or len(data["x"]) < 2:
            return False
        gaps = {_ms(b) - _ms(a) for a, b in zip(data["x"], data["x"][1:], strict=False)}
        return all(g % step_ms == 0 for g in gaps)

    wait_until(spaced, 30, f"{wider} candles")
    page.locator("#interval label", has_text=intervals[0]).first.click()


def test_a_hostile_symbol_in_the_url_does_nothing_harmful(page: Any, up: dict[str, Any]) -> None:
    payload = "x' OR 1=1; DROP TABLE candles_10s; --<img src=x onerror=alert(1)>"
    page.goto(up["url"] + "?symbol=" + quote(payload))
    wait_until(lambda: "No candles for" in page.inner_text("#chart"), 30, "the empty state")
    assert page.locator("img[src='x']").count() == 0
    page.goto(up["url"])
    data = wait_until(lambda: candles_at_least(page, 4, "BTCUSDT"), 30, "BTCUSDT again")
    assert_matches_reference(data, up["reference"])
    page.click("#symbol")
    options = page.get_by_role("option").all_inner_texts()
    assert "BTCUSDT" in options and "ETHUSDT" in options
    page.keyboard.press("Escape")
    assert not page.dialogs, page.dialogs
