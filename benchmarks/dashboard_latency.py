"""Dashboard live-update cost: the incremental ``Patch`` tick against a full-figure redraw.

A chDB store gets ``--days`` of 10 s candles for each symbol (written directly, no pipeline).
Then, for each time range, it plays ``--ticks`` live ticks: before each, the open candle changes
and every 10th tick a new candle opens (10 s candles at a 1 s refresh). Each tick is served both
ways through Dash's own HTTP callback endpoint (Flask test client: query + figure + JSON, no
network), in alternating order:

* patch  - what the page asks every second: only what changed since the last shown candle;
* full   - the same chart redrawn from scratch (what a full-figure refresh costs).

    .venv/bin/python -m benchmarks.dashboard_latency            # 30 days x 3 symbols, 200 ticks
    .venv/bin/python -m benchmarks.dashboard_latency --days 1 --ticks 50   # a quick look

Writes ``build/results/bench/standalone/dashboard_latency.md`` (and ``.json``; ``--out``
elsewhere). Not a test: numbers depend on the machine and on what else runs on it. Row 6 of
``make bench`` (benchmarks/bench_dashboard.py) times every request of a tick, not only the chart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import candlegen
from benchmarks.common import STANDALONE, git_commit
from cryptolab.dashboard.app import create_app
from cryptolab.settings import load_settings
from cryptolab.store import Store, open_store
from cryptolab.store.schema import CANDLES_10S

RANGES = ("15m", "1h", "6h", "24h")
INPUTS = (
    ("tick", "n_intervals"),
    ("symbol", "value"),
    ("interval", "value"),
    ("range", "value"),
    ("custom-start", "value"),
    ("custom-end", "value"),
    ("paused", "data"),
)


def chart_request(symbol: str, range_key: str, state: Any, changed: str) -> dict[str, Any]:
    values = [1, symbol, "10s", range_key, None, None, False]
    return {
        "output": "..chart.figure...view.data...chart-stats.children..",
        "outputs": [
            {"id": "chart", "property": "figure"},
            {"id": "view", "property": "data"},
            {"id": "chart-stats", "property": "children"},
        ],
        "inputs": [
            {"id": i, "property": p, "value": v} for (i, p), v in zip(INPUTS, values, strict=True)
        ],
        "state": [{"id": "view", "property": "data", "value": state}],
        "changedPropIds": [changed],
    }


def call(client: Any, body: dict[str, Any]) -> tuple[float, int, dict[str, Any]]:
    started = time.perf_counter()
    response = client.post("/_dash-update-component", json=body)
    raw = response.get_data()
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code in (200, 204), response.status_code
    return elapsed, len(raw), (json.loads(raw) if raw else {})


class Market:
    """Moves the newest candle of one symbol like a live feed would."""

    def __init__(self, store: Store, symbol: str, rng: np.random.Generator) -> None:
        self.store, self.symbol, self.rng = store, symbol, rng
        newest = store.query_rows(
            f"SELECT max(window_start) FROM {store.table(CANDLES_10S)} "  # noqa: S608
            "WHERE symbol = {s:String}",
            {"s": symbol},
        )[0][0]
        self.window_ms = int(newest.replace(tzinfo=UTC).timestamp() * 1000)

    def tick(self, opens_new: bool) -> None:
        if opens_new:
            self.window_ms += candlegen.STEP_MS
        row = candlegen.candle_table(self.symbol, self.window_ms, 1, self.rng)
        self.store.insert_arrow(CANDLES_10S, row)


def apply_state(state: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The view data the page holds after a tick: a Dash ``Patch`` of top-level keys is applied
    in place (as dash-renderer does), anything else replaces it."""
    if sent.get("__dash_patch_update") != "__dash_patch_update":
        return sent
    new = dict(state)
    for op in sent["operations"]:
        assert op["operation"] == "Assign" and len(op["location"]) == 1, op
        new[op["location"][0]] = op["params"]["value"]
    return new


def other_ticks(client: Any, symbol: str, ticks: int) -> dict[str, float]:
    """The two other callbacks a page fires every second: tiles, and banner + pipeline panel."""
    tick = {"id": "tick", "property": "n_intervals", "value": 1}
    tiles = {
        "output": "tiles.children",
        "outputs": {"id": "tiles", "property": "children"},
        "inputs": [tick, {"id": "symbol", "property": "value", "value": symbol}],
        "changedPropIds": ["tick.n_intervals"],
    }
    pipeline = {
        "output": "..banner.children...banner.style...pipeline.children..",
        "outputs": [
            {"id": "banner", "property": "children"},
            {"id": "banner", "property": "style"},
            {"id": "pipeline", "property": "children"},
        ],
        "inputs": [tick],
        "changedPropIds": ["tick.n_intervals"],
    }
    tiles_ms = [call(client, tiles)[0] for _ in range(ticks)]
    pipeline_ms = [call(client, pipeline)[0] for _ in range(ticks)]
    return {
        "tiles_p50_ms": pct(tiles_ms, 50),
        "tiles_p99_ms": pct(tiles_ms, 99),
        "pipeline_p50_ms": pct(pipeline_ms, 50),
        "pipeline_p99_ms": pct(pipeline_ms, 99),
    }


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_range(client: Any, market: Market, range_key: str, ticks: int) -> dict[str, Any]:
    symbol = market.symbol
    _, _, first = call(client, chart_request(symbol, range_key, None, "range.value"))
    state = first["response"]["view"]["data"]
    candles = state["count"]
    patch_ms, patch_bytes, full_ms, full_bytes = [], [], [], []
    for i in range(ticks):
        market.tick(opens_new=(i % 10 == 9))
        order = ("patch", "full") if i % 2 == 0 else ("full", "patch")
        for kind in order:
            if kind == "patch":
                ms, size, answer = call(
                    client, chart_request(symbol, range_key, state, "tick.n_intervals")
                )
                assert "__dash_patch_update" in json.dumps(answer.get("response", {}).get("chart"))
                state = apply_state(state, answer["response"]["view"]["data"])
                patch_ms.append(ms)
                patch_bytes.append(size)
            else:
                ms, size, _ = call(client, chart_request(symbol, range_key, None, "range.value"))
                full_ms.append(ms)
                full_bytes.append(size)
    return {
        "range": range_key,
        "candles": candles,
        "full_p50_ms": pct(full_ms, 50),
        "full_p99_ms": pct(full_ms, 99),
        "patch_p50_ms": pct(patch_ms, 50),
        "patch_p99_ms": pct(patch_ms, 99),
        "full_bytes_p50": statistics.median(full_bytes),
        "patch_bytes_p50": statistics.median(patch_bytes),
        "patch_bytes_p99": pct([float(b) for b in patch_bytes], 99),
    }


def markdown(rows: list[dict[str, Any]], others: dict[str, float], meta: dict[str, Any]) -> str:
    lines = [
        "# Dashboard live update: incremental Patch vs full-figure redraw",
        "",
        f"Command: `{meta['command']}`  ",
        f"Store: chDB, {meta['rows']:,} 10 s candles ({meta['days']} days x "
        f"{len(meta['symbols'])} symbols), filled in {meta['fill_s']:.1f} s; "
        f"{meta['ticks']} ticks per range, patch and full alternating.  ",
        f"Machine: {meta['machine']}, 1-min load average {meta['load']} (other work shares "
        f"the cores); measured {meta['when']}. Latency = one Dash callback "
        "through the Flask test client (store query + figure + JSON), no network.",
        "",
        "| range | candles | full p50 / p99 ms | patch p50 / p99 ms | speed-up p50 "
        "| full bytes | patch bytes p50 / p99 | smaller by |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['range']} | {r['candles']:,} | {r['full_p50_ms']:.1f} / {r['full_p99_ms']:.1f} "
            f"| {r['patch_p50_ms']:.1f} / {r['patch_p99_ms']:.1f} "
            f"| {r['full_p50_ms'] / r['patch_p50_ms']:.1f}x "
            f"| {r['full_bytes_p50']:,.0f} | {r['patch_bytes_p50']:,.0f} / "
            f"{r['patch_bytes_p99']:,.0f} | {r['full_bytes_p50'] / r['patch_bytes_p50']:.0f}x |"
        )
    lines += [
        "",
        "Every 10th tick a new candle opens, so the patch also drops the candle that left the "
        "range (p99 bytes); the other ticks only replace the open candle. Browser-side cost "
        "(Plotly re-render) is not included.",
        "",
        "The page's two other callbacks, also fired every second (same store): tiles (last "
        f"price, 24 h change, trades/s) {others['tiles_p50_ms']:.1f} / "
        f"{others['tiles_p99_ms']:.1f} ms p50 / p99; banner + pipeline panel (freshness query; "
        f"no pipeline attached) {others['pipeline_p50_ms']:.1f} / "
        f"{others['pipeline_p99_ms']:.1f} ms.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT,BNBUSDT")
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--out", type=Path, default=STANDALONE / "dashboard_latency.md")
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cryptolab-bench-") as tmp:
        settings = load_settings(data_dir=tmp)
        store = open_store(settings)
        started = time.perf_counter()
        rows = candlegen.fill(store, symbols, args.days, datetime.now(UTC))
        fill_s = time.perf_counter() - started
        store.command(f"OPTIMIZE TABLE {store.table(CANDLES_10S)} FINAL")
        client = create_app(store, settings).server.test_client()
        market = Market(store, symbols[0], np.random.default_rng(11))
        results = [run_range(client, market, r, args.ticks) for r in RANGES]
        others = other_ticks(client, symbols[0], args.ticks)
        store.close()
    meta = {
        "command": "python -m benchmarks.dashboard_latency "
        f"--days {args.days:g} --ticks {args.ticks} --symbols {args.symbols}",
        "rows": rows,
        "days": f"{args.days:g}",
        "symbols": symbols,
        "ticks": args.ticks,
        "fill_s": fill_s,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "when": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit {git_commit()}",
        "load": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
    }
    text = markdown(results, others, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": results, "others": others}, indent=2)
    )
    print(text)


if __name__ == "__main__":
    main()
