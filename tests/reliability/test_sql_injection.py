"""SQL injection through every user-facing parameter is harmless.

A real store (chDB) holds the sample market (trades and 10 s candles); classic payloads go in
through the command line (``query``, ``reconcile``, ``report``), the dashboard's HTTP callbacks
(chart, tiles, URL parameters) and the notebook API (``cryptolab.lab`` / ``store.market`` /
``store.queries``). Each must end in a clear validation error or an empty result; afterwards
the same tables hold the same rows.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cryptolab import cli, lab
from cryptolab.batch.load import load_tape
from cryptolab.bus.broker import free_port
from cryptolab.errors import CryptolabError, StoreError
from cryptolab.settings import Settings, load_settings
from cryptolab.store import Store, market, open_store, queries
from cryptolab.store.schema import CANDLES_10S
from tests.dash_http import chart_request
from tests.reliability.results import record

PAYLOADS = [
    "'; DROP TABLE trades; --",
    "BTCUSDT' OR 1=1 --",
    "BTCUSDT' OR '1'='1",
    'BTCUSDT" OR "1"="1',
    "' UNION SELECT name, name FROM system.tables --",
    "BTCUSDT'; SELECT * FROM system.users; --",
    "BTCUSDT') OR ('a'='a",
    "\\'; DROP TABLE candles_10s; --",
    "BTCUSDT\\",
    "\\\\' OR 1=1 --",
    "{symbol:String}",
    "{x:Identifier}",
    "`crypto`.`trades`",
    "1; ALTER TABLE trades DELETE WHERE 1",
    "BTCUSDT' INTO OUTFILE '/tmp/cryptolab-pwned' --",
    "BTCUSDT' SETTINGS max_threads=1 --",
    "BTCUSDT/**/OR/**/1=1",
    "BTCUSDT%27%20OR%201%3D1",
    "BTCUSDT\x00' OR 1=1",
    "\nDROP TABLE trades",
    "ＢＴＣＵＳＤＴ' ＯＲ 1=1",  # fullwidth look-alikes
    "БТЦ'; DROP DATABASE system; --",
    "💥' OR sleep(3) --",
    "10s'; TRUNCATE TABLE candles_10s; --",
    "toIntervalSecond(1)) --",
    "2026-11-01' OR 1=1 --",
    "A" * 100_000,
]
VALID_TIME = "2026-11-01T00:00:00Z"


@dataclass
class Outcomes:
    """How each attempt ended."""

    counts: Counter[str]

    def add(self, kind: str) -> None:
        self.counts[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@pytest.fixture(scope="module")
def loaded(chdb_root: Path) -> Iterator[tuple[Store, Settings]]:
    settings = load_settings(data_dir=chdb_root, clickhouse_database="sqli_market")
    store = open_store(settings)
    load_tape(store, lab.sample_market())
    yield store, settings
    store.close()


def snapshot(store: Store) -> dict[str, int]:
    """Every table of every database, with its row count (nothing may disappear or change)."""
    tables = store.query_rows(
        "SELECT database, name FROM system.tables WHERE database NOT IN "
        "('system', 'information_schema', 'INFORMATION_SCHEMA') AND engine NOT LIKE '%View%'"
    )
    return {
        f"{db}.{name}": int(store.query_rows(f"SELECT count() FROM `{db}`.`{name}`")[0][0])
        for db, name in tables
    }


def test_command_line_parameters(
    loaded: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    store, settings = loaded
    before = snapshot(store)
    assert before[f"{store.database}.trades"] > 10_000
    monkeypatch.setenv("CRYPTOLAB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CRYPTOLAB_CLICKHOUSE_DATABASE", store.database)
    outcomes = Outcomes(Counter())
    for payload in PAYLOADS:
        base = ["query", "candles", "--format", "csv"]
        attempts = [
            [*base, "--symbol", payload],
            [*base, "--symbol", "BTCUSDT", "--interval", payload],
            [*base, "--symbol", "BTCUSDT", f"--start={payload}"],
            [*base, "--symbol", "BTCUSDT", f"--end={payload}"],
            [*base, "--symbol", "BTCUSDT", f"--last={payload}"],
            ["reconcile", f"--since={payload}"],
            ["reconcile", f"--since={VALID_TIME}", f"--until={payload}"],
            ["report", "--symbol", payload, "--start", VALID_TIME, "--end", "2026-11-01T00:10Z"],
        ]
        for argv in attempts:
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # argparse rejected the value
                code = int(exc.code or 0)
            out, err = capsys.readouterr()
            assert "Traceback" not in out + err
            assert code == 2, (argv[:6], code, out[-300:], err[-300:])
            assert "error" in err and len(err) < 2_000, err[-300:]  # one clear line, no echo
            outcomes.add("validation error")
    # the same commands with valid values still answer (the store was not broken on the way)
    assert cli.main(["query", "candles", "--symbol", "BTCUSDT", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    btc = store.query_rows(
        f"SELECT count() FROM {store.table(CANDLES_10S)} FINAL WHERE symbol = 'BTCUSDT'"
    )[0][0]
    assert len(rows) - 1 == btc > 0  # header + every BTCUSDT candle
    after = snapshot(store)
    assert after == before
    record(
        "security",
        "sql injection: command line",
        attempted="query candles --symbol/--interval/--start/--end/--last, reconcile "
        "--since/--until, report --symbol",
        cases=outcomes.total,
        observed=f"{len(PAYLOADS)} payloads, {outcomes.total} commands: "
        f"{outcomes.counts['validation error']} exit 2 with one line; tables intact "
        f"({len(after)}), trades before/after {before[f'{store.database}.trades']} / "
        f"{after[f'{store.database}.trades']}",
    )


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url + "_dash-update-component",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode(errors="replace")[:300]}


def _tiles(symbol: str) -> dict[str, Any]:
    return {
        "output": "tiles.children",
        "outputs": {"id": "tiles", "property": "children"},
        "inputs": [
            {"id": "tick", "property": "n_intervals", "value": 1},
            {"id": "symbol", "property": "value", "value": symbol},
        ],
        "changedPropIds": ["symbol.value"],
    }


def _url_controls(search: str) -> dict[str, Any]:
    outputs = [("interval", "value"), ("range", "value"), ("custom-start", "value"),
               ("custom-end", "value")]  # fmt: skip
    return {
        "output": ".." + "...".join(f"{c}.{p}" for c, p in outputs) + "..",
        "outputs": [{"id": c, "property": p} for c, p in outputs],
        "inputs": [{"id": "url", "property": "search", "value": search}],
        "changedPropIds": ["url.search"],
    }


def _symbols_from_url(search: str) -> dict[str, Any]:
    return {
        "output": "..symbol.options...symbol.value..",
        "outputs": [{"id": "symbol", "property": "options"}, {"id": "symbol", "property": "value"}],
        "inputs": [
            {"id": "url", "property": "search", "value": search},
            {"id": "slow-tick", "property": "n_intervals", "value": None},
        ],
        "state": [
            {"id": "symbol", "property": "value", "value": None},
            {"id": "symbol", "property": "options", "value": []},
        ],
        "changedPropIds": ["url.search"],
    }


def _candles_shown(answer: dict[str, Any]) -> int:
    figure = answer["response"]["chart"]["figure"]
    traces = [t for t in figure.get("data", []) if t.get("type") == "candlestick"]
    return sum(len(t.get("x") or []) for t in traces)


def test_dashboard_callbacks_over_http(loaded: tuple[Store, Settings]) -> None:
    from cryptolab.dashboard.server import DashServer

    store, settings = loaded
    before = snapshot(store)
    dash_settings = load_settings(
        data_dir=settings.data_dir, clickhouse_database=store.database, dash_port=free_port()
    )
    server = DashServer.start(store, dash_settings)
    outcomes = Outcomes(Counter())
    statuses: Counter[int] = Counter()
    shown = 0
    try:
        url = server.url
        for payload in PAYLOADS:
            chart_attempts = [
                chart_request(payload),
                chart_request("BTCUSDT", interval=payload),
                chart_request("BTCUSDT", range_key=payload),
                chart_request("BTCUSDT", range_key="custom", start=payload),
                chart_request("BTCUSDT", range_key="custom", start=VALID_TIME, end=payload),
            ]
            for body in chart_attempts:
                code, answer = _post(url, body)
                statuses[code] += 1
                assert code == 200, (code, answer)
                shown += _candles_shown(answer)
                assert shown == 0  # never someone else's rows
                outcomes.add("empty chart with a note")
            code, answer = _post(url, _tiles(payload))
            statuses[code] += 1
            assert code == 200 and "Traceback" not in json.dumps(answer)
            assert "BTCUSDT" not in json.dumps(answer["response"]) or "BTCUSDT" in payload
            outcomes.add("empty tiles")
            search = f"?symbol={quote(payload)}&interval={quote(payload)}&start={quote(payload)}"
            for body in (_url_controls(search), _symbols_from_url(search)):
                code, answer = _post(url, body)
                statuses[code] += 1
                assert code in (200, 204), (code, answer)
                outcomes.add("url parameter ignored or shown as typed")
        valid = chart_request("BTCUSDT", range_key="custom", start=VALID_TIME)
        code, answer = _post(url, valid)
        assert code == 200 and _candles_shown(answer) > 0  # the dashboard still works
    finally:
        server.stop()
    after = snapshot(store)
    assert after == before
    record(
        "security",
        "sql injection: dashboard",
        attempted="real HTTP POST /_dash-update-component: chart (symbol, interval, range, "
        "custom start/end), tiles (symbol), URL ?symbol=&interval=&start=",
        cases=outcomes.total,
        observed=f"{len(PAYLOADS)} payloads, {outcomes.total} requests: HTTP "
        + ", ".join(f"{k}x{v}" for k, v in sorted(statuses.items()))
        + f"; candles shown for payloads {shown}; tables intact ({len(after)}), candles "
        f"before/after {before[f'{store.database}.{CANDLES_10S}']} / "
        f"{after[f'{store.database}.{CANDLES_10S}']}",
    )


def test_notebook_api(loaded: tuple[Store, Settings], make_settings: Any) -> None:
    store, settings = loaded
    before = snapshot(store)
    data = lab.MarketData(store, settings, None)
    outcomes = Outcomes(Counter())
    reads = {
        "market.trades": lambda s: market.trades(store, s),
        "market.summary": lambda s: market.summary(store, s),
        "market.busiest": lambda s: market.busiest(store, s),
        "market.volume_profile": lambda s: market.volume_profile(store, s),
        "market.size_distribution": lambda s: market.size_distribution(store, s),
        "queries.candles": lambda s: queries.candles(store, s, "1m"),
        "queries.ticker": lambda s: queries.ticker(store, s),
        "queries.candle_bounds": lambda s: queries.candle_bounds(store, s),
    }
    for payload in PAYLOADS:
        for name, read in reads.items():
            result: Any = read(payload)
            empty = result is None or len(result) == 0  # DataFrame, dict or None
            assert empty, (name, payload[:40], result)
            outcomes.add("empty result")
        with pytest.raises(CryptolabError, match=r"(?s)no .* trades"):
            data.require_trades(payload)
        outcomes.add("clear error")
        with pytest.raises(ValueError, match="unknown interval"):
            queries.candles(store, "BTCUSDT", payload)
        outcomes.add("clear error")
        for start, end in ((payload, None), (VALID_TIME, payload)):
            with pytest.raises(CryptolabError, match="not an ISO 8601 time"):
                lab.period(start, end)
            outcomes.add("clear error")
        with pytest.raises(CryptolabError):  # a database name is an identifier, never SQL
            open_store(make_settings(clickhouse_url=f"http://u@127.0.0.1:1/{quote(payload)}"))
        outcomes.add("clear error")
    assert len(market.trades(store, "BTCUSDT", limit=5)) == 5  # still answering
    with pytest.raises(StoreError, match="must be letters, digits and underscores"):
        open_store(make_settings(clickhouse_url="http://u@127.0.0.1:1/crypto%60%3B%20DROP"))
    after = snapshot(store)
    assert after == before
    record(
        "security",
        "sql injection: notebook API",
        attempted="lab.MarketData.require_trades, lab.period, store.market.* and "
        "store.queries.* with hostile symbols, intervals, times and database names",
        cases=outcomes.total,
        observed=f"{len(PAYLOADS)} payloads, {outcomes.total} calls: "
        f"{outcomes.counts['empty result']} empty results, {outcomes.counts['clear error']} "
        f"clear errors; tables intact ({len(after)}), rows unchanged",
    )
