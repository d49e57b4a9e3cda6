"""Row 6: everything the browser requests on a live tick, through Dash's callback endpoint.

A chDB store holds 30 days of 10 s candles for 3 symbols (written directly, no pipeline). On
each tick the open candle changes (every 10th tick a new candle opens), then the page's tick
callbacks are requested as the browser does (Flask test client: store query + figure + JSON,
no network), for three pages in rotating order:

* ours           - chart as a ``Patch`` of what changed, tiles, banner + pipeline panel, and
                   the symbol list every 5th tick (its own 5 s interval);
* full redraw    - the same page with the chart redrawn from scratch every tick;
* seed           - the original page: one full-figure chart, nothing else.

A tick's cost is the sum of its requests (the store serialises their queries) and the sum of
their response bytes. Browser-side rendering is not included.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from typing import Any

import numpy as np

from benchmarks import candlegen
from benchmarks.common import Baseline, Clause, Result, percentile
from benchmarks.dashboard_latency import Market, apply_state, call, chart_request
from cryptolab.dashboard.app import create_app
from cryptolab.settings import load_settings
from cryptolab.store import open_store
from cryptolab.store.schema import CANDLES_10S

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
RANGE = "1h"
TICKS = 60
TICK = {"id": "tick", "property": "n_intervals", "value": 1}
STATUS = {  # what Stack.snapshot gives the panel while a replay runs
    "live": False,
    "description": "REPLAY of tape.jsonl.gz at 1x — not live",
    "feed_done": False,
    "producer": {"frames": 41_213, "trades": 41_210, "dlq": 3, "send_errors": 0},
    "spark": {
        "trades": {"input_rps": 137.2, "processed_rps": 140.1, "batch_ms": 412},
        "candles": {"input_rps": 137.2, "processed_rps": 139.0, "batch_ms": 530},
    },
    "kafka_lag": 12,
    "feed": {"late_trades": 0, "quarantined": 0},
}


def _tiles(symbol: str) -> dict[str, Any]:
    return {
        "output": "tiles.children",
        "outputs": {"id": "tiles", "property": "children"},
        "inputs": [TICK, {"id": "symbol", "property": "value", "value": symbol}],
        "changedPropIds": ["tick.n_intervals"],
    }


PIPELINE = {
    "output": "..banner.children...banner.style...pipeline.children..",
    "outputs": [
        {"id": "banner", "property": "children"},
        {"id": "banner", "property": "style"},
        {"id": "pipeline", "property": "children"},
    ],
    "inputs": [TICK],
    "changedPropIds": ["tick.n_intervals"],
}


def _symbols(symbol: str) -> dict[str, Any]:
    return {
        "output": "..symbol.options...symbol.value..",
        "outputs": [{"id": "symbol", "property": "options"}, {"id": "symbol", "property": "value"}],
        "inputs": [
            {"id": "url", "property": "search", "value": ""},
            {"id": "slow-tick", "property": "n_intervals", "value": 1},
        ],
        "state": [
            {"id": "symbol", "property": "value", "value": symbol},
            {"id": "symbol", "property": "options", "value": SYMBOLS},
        ],
        "changedPropIds": ["slow-tick.n_intervals"],
    }


class Page:
    """One browser page: its view state and what each tick costs it."""

    def __init__(self, client: Any, symbol: str, chart: str, others: bool) -> None:
        self.client, self.symbol, self.chart, self.others = client, symbol, chart, others
        self.state: Any = None
        self.ms: list[float] = []
        self.bytes: list[int] = []
        self.parts: dict[str, list[tuple[float, int]]] = {}  # request -> (ms, bytes) per tick
        if chart == "patch":
            _, _, first = call(client, chart_request(symbol, RANGE, None, "range.value"))
            self.state = first["response"]["view"]["data"]

    def _call(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        ms, size, answer = call(self.client, body)
        self.parts.setdefault(name, []).append((ms, size))
        self.ms[-1] += ms
        self.bytes[-1] += size
        return answer

    def tick(self, number: int) -> None:
        self.ms.append(0.0)
        self.bytes.append(0)
        if self.chart == "patch":
            body = chart_request(self.symbol, RANGE, self.state, "tick.n_intervals")
            answer = self._call("chart", body)
            if "__dash_patch_update" not in json.dumps(answer["response"]["chart"]):
                raise AssertionError("the live tick did not answer with a Patch")
            self.state = apply_state(self.state, answer["response"]["view"]["data"])
        else:
            self._call("chart", chart_request(self.symbol, RANGE, None, "range.value"))
        if self.others:
            self._call("tiles", _tiles(self.symbol))
            self._call("pipeline", PIPELINE)
            if number % 5 == 4:  # the 5 s slow tick at the default 1 s refresh
                self._call("symbols", _symbols(self.symbol))


def dashboard_update(repeats: int = 3, days: float = 30) -> Result:
    rounds: list[dict[str, Page]] = []
    with tempfile.TemporaryDirectory(prefix="cryptolab-bench-") as tmp:
        settings = load_settings(data_dir=tmp)
        store = open_store(settings)
        candles = candlegen.fill(store, SYMBOLS, days, datetime.now(UTC))
        store.command(f"OPTIMIZE TABLE {store.table(CANDLES_10S)} FINAL")
        client = create_app(store, settings, lambda: STATUS).server.test_client()
        market = Market(store, SYMBOLS[0], np.random.default_rng(11))
        for _ in range(repeats):
            pages = {
                "ours": Page(client, SYMBOLS[0], "patch", True),
                "full": Page(client, SYMBOLS[0], "full", True),
                "seed": Page(client, SYMBOLS[0], "full", False),
            }
            names = list(pages)
            for number in range(TICKS):
                market.tick(opens_new=number % 10 == 9)
                for name in names[number % 3 :] + names[: number % 3]:
                    pages[name].tick(number)
            rounds.append(pages)
        store.close()

    def p50s(name: str) -> list[float]:
        return [round(percentile(r[name].ms, 50), 2) for r in rounds]

    def all_bytes(name: str) -> list[float]:
        return [float(b) for r in rounds for b in r[name].bytes]

    ours_p99 = percentile([m for r in rounds for m in r["ours"].ms], 99)
    result = Result(
        6,
        "dashboard live tick, every request of the page, 1 h of 10 s candles",
        "ms p50",
        p50s("ours"),
        ">= 5x faster, >= 50x fewer bytes, p99 <= 50 ms",
        [],
        [
            Baseline(
                "our page, chart redrawn in full",
                p50s("full"),
                "the same requests with a full-figure chart instead of the Patch",
            ),
            Baseline(
                "seed page: one full-figure chart",
                p50s("seed"),
                "the original page: a full-figure chart callback per tick, no tiles",
            ),
        ],
        notes=f"{candles:,} candles in chDB ({days:g} days x 3 symbols), {TICKS} ticks per "
        "round; ours = chart Patch + tiles + banner/pipeline panel, + the symbol list every 5th "
        "tick, summed per tick (ms and response bytes)",
        extra={
            "ours_p99_ms_all_ticks": round(ours_p99, 2),
            "bytes_p50": {k: percentile(all_bytes(k), 50) for k in ("ours", "full", "seed")},
            "ours_per_request_p50_ms_bytes": {
                name: f"{percentile([m for r in rounds for m, _ in r['ours'].parts[name]], 50):.1f}"
                f" ms, {percentile([b for r in rounds for _, b in r['ours'].parts[name]], 50):,.0f}"
                " bytes"
                for name in rounds[0]["ours"].parts
            },
            "ticks_per_round": TICKS,
        },
    )
    ratio = result.ratio(result.baselines[0]) or 0.0
    smaller = percentile(all_bytes("full"), 50) / percentile(all_bytes("ours"), 50)
    result.clauses = [
        Clause(">= 5x faster than our page redrawn", round(ratio, 2), ratio >= 5),
        Clause(">= 50x fewer bytes", round(smaller, 1), smaller >= 50),
        Clause("p99 <= 50 ms", round(ours_p99, 2), ours_p99 <= 50),
    ]
    return result
