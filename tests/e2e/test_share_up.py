"""While `cryptolab up` runs, everything else reads its live store (issue 18).

One `up` (local Kafka broker, Spark, chDB, dashboard) replays a tape and keeps running. Then,
in other processes: clickhouse-connect's own HTTP client, `cryptolab query`, `doctor`,
`reconcile --dry-run`, `dash`, `report --tape none`, notebook 02 with tape=None (papermill),
and curl trying to write. Expected values come from tests.reference (plain pandas over the
tape); after a clean stop, an in-process read of the store equals what the share returned.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import nbformat
import pytest

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.dash_http import chart_request
from tests.e2e.helpers import environment, stored_candles
from tests.reference import assert_candles_equal, reference_candles, tape_trades
from tests.tools import need

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
READY_TIMEOUT_S = 900  # a cold Spark on a busy 2-core machine takes minutes
DUMP = """
import sys, orjson
from cryptolab import load_settings
from cryptolab.store import open_store
store = open_store(load_settings(), read_only=True)
out = {"shared": store.shared is not None}
for table, key, skip in (("trades", "symbol, trade_id", "stored_at, ingest_time"),
                         ("candles_10s", "symbol, window_start", "updated_at")):
    rows = store.query_rows(
        f"SELECT * EXCEPT ({skip}) FROM {store.table(table)} FINAL ORDER BY {key}")
    out[table] = [[str(v) for v in row] for row in rows]
sys.stdout.write(orjson.dumps(out).decode())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    process: subprocess.Popen[str]
    data: Path
    tape: Path
    env: dict[str, str]
    url: str
    dash_port: int
    seen: dict[str, Any] = field(default_factory=dict)  # what the share returned, for the end

    @property
    def port(self) -> int:
        return int(urllib.parse.urlsplit(self.url).port or 0)


def dump(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", DUMP],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def ask(url: str, sql: str) -> str:
    with urllib.request.urlopen(
        url + "/?" + urllib.parse.urlencode({"query": sql}), timeout=60
    ) as r:
        return str(r.read().decode())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("share_up")
    tape = tmp / "live.jsonl"
    write_frames(tape, synth_frames(SYMBOLS, 300, 10, seed=41))
    expected = len(tape_trades(tape))
    data, dash_port = tmp / "data", free_port()
    env = environment(
        data, CRYPTOLAB_STORE_SHARE_PORT=str(free_port()), CRYPTOLAB_DASH_PORT=str(dash_port)
    )
    log = (tmp / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptolab", "up", "--source", "replay", "--tape", str(tape),
         "--speed", "max"],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=tmp,
    )  # fmt: skip
    endpoint = data / "clickhouse.endpoint"
    deadline = time.monotonic() + READY_TIMEOUT_S
    url, counted = "", ""
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp / "up.log").read_text()[-4000:]
            if endpoint.exists():
                url = endpoint.read_text().splitlines()[0]
                counted = (
                    ask(url, "SELECT count() FROM crypto.trades FINAL").strip()
                    + " "
                    + ask(url, "SELECT sum(trades) FROM crypto.candles_10s FINAL").strip()
                )
                if counted == f"{expected} {expected}":
                    break
            time.sleep(2)
        else:
            pytest.fail(f"up never had all {expected} trades in store and candles ({counted})")
        yield Live(process, data, tape, env, url, dash_port)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=180)
        log.close()


def test_clickhouse_connect_reads_the_live_store(live: Live) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=live.port)
    assert client.ping()
    trades = tape_trades(live.tape)
    sql = (
        "SELECT count(), sum(qty), min(trade_id), max(trade_id) FROM crypto.trades FINAL "
        "WHERE symbol = {s:String} AND trade_time >= {t:DateTime64(3, 'UTC')}"
    )
    for symbol in SYMBOLS:
        mine = trades[trades.symbol == symbol]
        count, qty, low, high = client.query(sql, {"s": symbol, "t": "2000-01-01"}).result_rows[0]
        assert (count, qty, low, high) == (
            len(mine), sum(mine.qty, Decimal(0)), mine.trade_id.min(), mine.trade_id.max()
        )  # fmt: skip
    arrow = client.query_arrow(
        "SELECT symbol, toUnixTimestamp64Milli(window_start) AS start, close, trades "
        "FROM crypto.candles_10s FINAL ORDER BY symbol, start"
    )
    reference = reference_candles(trades)
    got = {(r["symbol"], r["start"]): (r["close"], r["trades"]) for r in arrow.to_pylist()}
    assert got == {k: (v["close"], v["trades"]) for k, v in reference.items()}
    with pytest.raises(clickhouse_connect.driver.exceptions.DatabaseError, match="code: 60"):
        client.query("SELECT * FROM crypto.no_such_table")
    live.seen.update(dump(live.env))
    assert live.seen["shared"], "the reader went through the share"


def test_the_cli_reads_the_live_store(live: Live) -> None:
    assert_candles_equal(
        stored_candles(live.env, SYMBOLS), reference_candles(tape_trades(live.tape))
    )
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", "doctor"],
        env=live.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert f"owned by the running pipeline (pid {live.process.pid})" in done.stdout
    assert f"dashboard port {live.dash_port}: the running pipeline's" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", "reconcile", "--dry-run"],
        env=live.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and " 0 would change" in done.stdout, done.stderr[-2000:]
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", "reconcile"],
        env=live.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and f"pid {live.process.pid}" in done.stderr


def test_a_second_dashboard_shows_the_live_store(live: Live) -> None:
    port = free_port()
    dash = subprocess.Popen(
        [sys.executable, "-m", "cryptolab", "dash", "--port", str(port)],
        env=live.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert dash.stdout is not None
        assert dash.stdout.readline().strip() == f"dashboard: http://127.0.0.1:{port}/"
        body = json.dumps(chart_request("BTCUSDT", range_key="15m")).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/_dash-update-component",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            figure = json.loads(response.read())["response"]["chart"]["figure"]
        trace = next(t for t in figure["data"] if t["type"] == "candlestick")
        reference = reference_candles(tape_trades(live.tape))
        btc = sorted(start for symbol, start in reference if symbol == "BTCUSDT")
        assert trace["x"] == btc, "the 5 minutes of the tape fit in the 15 minute range"
        for x, close in zip(trace["x"], trace["close"], strict=True):
            assert Decimal(str(close)) == reference[("BTCUSDT", int(x))]["close"]
    finally:
        dash.send_signal(signal.SIGINT)
        assert dash.wait(timeout=120) == 0
    assert dash.stderr is not None
    assert f"read-only share at {live.url}" in dash.stderr.read()


def test_report_and_notebook_read_the_live_store(live: Live, tmp_path: Path) -> None:
    import papermill

    trades = tape_trades(live.tape)
    btc = trades[trades.symbol == "BTCUSDT"]
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(btc.trade_time.min() // 1_000_000))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(btc.trade_time.max() // 1_000_000 + 1))
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", "report", "--tape", "none", "--symbol", "BTCUSDT",
         "--start", start, "--end", end, "--out", str(tmp_path / "reports")],
        env=live.env, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    html = next((tmp_path / "reports").glob("*.html")).read_text()
    assert "(read-only share)" in html and f"{len(btc):,}" in html

    output = tmp_path / "02.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "02_explore_trades.ipynb"),
        str(output),
        parameters={"tape": None, "data_dir": str(live.data), "symbol": "BTCUSDT"},
        cwd=str(tmp_path),
        progress_bar=False,
    )
    cells = [c for c in nbformat.read(output, as_version=4).cells if c.cell_type == "code"]
    text = "\n".join(o.get("text", "") for c in cells for o in c.outputs)
    assert f"read-only through its share at {live.url}" in text
    assert f"{len(btc):,} BTCUSDT trades" in text


def test_writes_through_the_share_are_refused(live: Live) -> None:
    curl = need("curl")
    before = ask(live.url, "SELECT count(), sum(cityHash64(*)) FROM crypto.trades")
    for sql in (
        "INSERT INTO crypto.trades (symbol, trade_id) VALUES ('BTCUSDT', 1)",
        "DROP TABLE crypto.trades",
        "ALTER TABLE crypto.trades DELETE WHERE 1",
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1; DROP TABLE crypto.candles_10s",
    ):
        done = subprocess.run(
            [curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", sql,
             live.url + "/"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.stdout in ("500", "400"), (sql, done.stdout)
    assert ask(live.url, "SELECT count(), sum(cityHash64(*)) FROM crypto.trades") == before


def test_after_a_clean_stop_an_in_process_read_equals_the_share(live: Live) -> None:
    assert live.seen, "the first test captured what the share returned"
    live.process.send_signal(signal.SIGTERM)
    assert live.process.wait(timeout=300) == 0
    assert not (live.data / "clickhouse.endpoint").exists()
    direct = dump(live.env)
    assert not direct["shared"], "nobody owns the store now: it opens in-process"
    assert direct["trades"] == live.seen["trades"]
    assert direct["candles_10s"] == live.seen["candles_10s"]
