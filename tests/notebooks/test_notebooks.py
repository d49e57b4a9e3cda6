"""The notebooks as CI runs them.

- papermill executes each notebook headless with parameters other than the committed ones
  (a cell error fails the test) and the outputs say what an independent computation says;
- nbval re-runs the committed notebooks and compares every output with the stored one
  (tests/notebooks/sanitize.cfg masks what legitimately varies: ports, addresses, timestamps);
- `cryptolab report` writes an executed notebook and a self-contained HTML page;
- `make lab` registers the project's kernel and serves JupyterLab.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import pytest

from cryptolab.bus.broker import free_port
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from cryptolab.lab.data import sample_market
from tests.reference import tape_trades

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
SANITIZE = Path(__file__).with_name("sanitize.cfg")
MS = 1000


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAB_")}
    if "CRYPTOLAB_CACHE_DIR" in os.environ:
        env["CRYPTOLAB_CACHE_DIR"] = os.environ["CRYPTOLAB_CACHE_DIR"]
    env.update(extra)
    return env


def run_notebook(name: str, parameters: dict[str, Any], tmp_path: Path) -> Any:
    import papermill

    output = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(output),
        parameters=parameters,
        cwd=str(tmp_path),
        progress_bar=False,
    )
    return nbformat.read(output, as_version=4)


def output_of(nb: Any, source: str) -> str:
    """The text outputs (stream, text/plain, text/markdown) of the first cell containing
    ``source``."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and source in c.source)
    parts = []
    for output in cell.outputs:
        assert output.output_type != "error", output
        if output.output_type == "stream":
            parts.append(output.text)
        for mime in ("text/markdown", "text/plain"):
            parts.append(output.get("data", {}).get(mime, ""))
    return "\n".join(parts)


def figures_of(nb: Any) -> list[dict[str, Any]]:
    return [
        o["data"]["application/vnd.plotly.v1+json"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]


def period_trades(symbol: str, start: str, end: str) -> Any:
    import pandas as pd

    trades = tape_trades(sample_market())
    first, last = (pd.Timestamp(t).value // 1_000 for t in (start, end))  # µs
    mine = trades[(trades.symbol == symbol) & (trades.trade_time >= first)]
    return mine[mine.trade_time < last]


# -- papermill, parameters other than the committed ones ----------------------------------------
def test_live_pipeline_notebook_replays_a_tape_inside_the_kernel(tmp_path: Path) -> None:
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 60, 5, seed=41))
    frames.insert(len(frames) // 2, '{"stream":"ethusdt@trade","data":"not a trade"}')
    tape = tmp_path / "two.jsonl"
    write_frames(tape, frames)
    eth = int((tape_trades(tape).symbol == "ETHUSDT").sum())
    run_dir = tmp_path / "run"
    nb = run_notebook(
        "01_live_pipeline",
        {"tape": str(tape), "symbols": ["ETHUSDT"], "speed": "max", "data_dir": str(run_dir)},
        tmp_path,
    )
    assert "REPLAY of two.jsonl at max speed" in output_of(nb, "lab.start_pipeline(")
    assert 'src="http://127.0.0.1:' in str(
        next(c for c in nb.cells if "show_dashboard" in c.source).outputs[0]["data"]["text/html"]
    )
    assert "drained: every published trade is in the store" in output_of(nb, "run_pipeline")
    counters = ast.literal_eval(output_of(nb, "lab.feed_counters(stack)").strip())
    assert counters == {"frames": eth + 1, "trades": eth, "dlq": 1}, (
        "only ETHUSDT, bad frame to DLQ"
    )
    summary = output_of(nb, "lab.pipeline_summary(stack)")
    assert "BTCUSDT" not in summary
    row = re.search(r"ETHUSDT\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", summary)
    assert row is not None, summary
    published, stored, _, in_candles = map(int, row.groups())
    assert published == stored == in_candles == eth
    assert "stopped" in output_of(nb, "lab.stop_pipeline(stack)")
    assert not (run_dir / "kafka" / "broker.pid").exists(), "the broker stopped with the stack"
    assert (run_dir / "logs" / "spark.log").exists(), "the Spark driver logged to a file"


def test_explore_notebook_runs_on_another_symbol_and_period(tmp_path: Path) -> None:
    start, end = "2026-11-01T00:05:00Z", "2026-11-01T00:20:00Z"
    params = {"symbol": "ETHUSDT", "start": start, "end": end, "interval": "5m"}
    nb = run_notebook("02_explore_trades", {**params, "profile_bins": 12}, tmp_path)
    expected = len(period_trades("ETHUSDT", start, end))
    assert f"{expected:,} ETHUSDT trades, 2026-11-01 00:05" in output_of(nb, "market.trades(")
    titles = [f["layout"]["title"]["text"] for f in figures_of(nb)]
    assert len(titles) == 5 and all(t.startswith("ETHUSDT: ") for t in titles), titles
    assert any("per 5m" in t for t in titles)
    corr = output_of(nb, "corr = ")
    assert re.search(r"correlation of 5m imbalance and 5m return: -?\d\.\d\d", corr), corr


def test_market_notebook_runs_on_chosen_symbols_of_another_tape(tmp_path: Path) -> None:
    """Notebook 05 with every parameter changed: its breadth and volume figures are what a
    pandas computation over the tape's raw trades says."""
    import gzip

    from cryptolab.feeds.tapes.factor import factor_market_frames, factor_symbols

    tape = tmp_path / "market.jsonl.gz"
    with gzip.open(tape, "wt", encoding="utf-8") as handle:
        for frame in factor_market_frames(factor_symbols(10), 2400, 6, seed=99):
            handle.write(frame + "\n")
    chosen = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "BTCFDUSD"]
    start, end = "2026-11-01T00:05:00Z", "2026-11-01T00:35:00Z"
    params = {"tape": str(tape), "symbols": [s.lower() for s in chosen], "start": start,
              "end": end, "interval": "5m", "lag_interval": "10s", "max_lag": 4,
              "top_correlated": 5, "movers": 2}  # fmt: skip
    nb = run_notebook("05_market", params, tmp_path)
    trades = tape_trades(tape)
    first_us, last_us = 1_793_491_500_000_000, 1_793_493_300_000_000  # trade_time: µs
    mine = trades[trades.symbol.isin(chosen) & (trades.trade_time >= first_us)]
    mine = mine[mine.trade_time < last_us].sort_values(["symbol", "trade_time", "trade_id"])
    grouped = mine.groupby("symbol")["price"]
    change = grouped.last() / grouped.first()
    up, down = int((change > 1).sum()), int((change < 1).sum())
    assert f"6 symbols: {up} advancers, {down} decliners" in output_of(nb, "market.breadth(")
    assert "6 symbols, " in output_of(nb, "choose_symbols") and "bars of 5m" in output_of(
        nb, "choose_symbols"
    )
    volume = mine.assign(q=[p * q for p, q in zip(mine.price, mine.qty, strict=True)])
    busiest = volume.groupby("symbol")["q"].sum().astype(float).sort_values().index[-1]
    table = output_of(nb, "market.concentration(")
    first_row = re.search(r"^0\s+(\S+)", table, re.MULTILINE)
    assert first_row is not None and first_row.group(1) == busiest, table
    assert "of 5 symbols peak after BTCUSDT" in output_of(nb, "market.lead_lag(")
    titles = [f["layout"]["title"]["text"] for f in figures_of(nb)]
    assert sum(t.endswith("(gainer)") or t.endswith("(loser)") for t in titles) == 4, titles
    assert any("Correlation of 5m returns" in t for t in titles)


# -- cryptolab report ---------------------------------------------------------------------------
def test_report_command_writes_the_executed_notebook_and_an_offline_html_page(
    tmp_path: Path,
) -> None:
    source = NOTEBOOKS / "03_market_report.ipynb"
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    start, end = "2026-11-01T00:10:00Z", "2026-11-01T00:20:00Z"
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", "report", "--symbol", "ethusdt", "--start", start,
         "--end", end, "--interval", "5m", "--tape", "sample", "--out", "out"],
        cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    stem = "03_market_report_ETHUSDT_20261101T001000Z_20261101T002000Z_5m"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{stem}.html", f"{stem}.ipynb"]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before, "never executed in place"
    executed = nbformat.read(tmp_path / "out" / f"{stem}.ipynb", as_version=4)
    assert executed.metadata["papermill"]["parameters"]["symbol"] == "ETHUSDT"
    html = (tmp_path / "out" / f"{stem}.html").read_text(encoding="utf-8")
    # self-contained: no script, stylesheet or font fetched from anywhere
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:|@import", html)
    figures = len(figures_of(executed))
    assert figures == 2 and html.count("Plotly.newPlot") == figures and 'id="figure-2"' in html
    assert "summary_table(" not in html and "open_market_data(" not in html, "code is hidden"
    trades = period_trades("ETHUSDT", start, end)
    assert f"<td>{len(trades):,}</td>" in html
    ids = sorted(trades.trade_id)
    gaps = [(a, b) for a, b in itertools.pairwise(ids) if b - a > 1]
    missing = sum(b - a - 1 for a, b in gaps)
    assert gaps and f"{len(gaps)} gap(s), {missing} trade(s) missing" in html


def test_report_command_says_what_to_do_when_it_cannot_report(tmp_path: Path) -> None:
    args = ["--symbol", "ETHUSDT", "--start", "2026-11-01T00:10Z", "--end", "2026-11-01T00:20Z"]
    empty = subprocess.run(
        [sys.executable, "-m", "cryptolab", "--data-dir", "nothing", "report", *args],
        cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert empty.returncode == 2
    assert "no ETHUSDT trades" in empty.stderr and "run the pipeline first" in empty.stderr
    partial = tmp_path / "reports" / "03_market_report_ETHUSDT_20261101T001000Z_20261101T002000Z_1m"
    assert partial.with_suffix(".ipynb").exists() and not partial.with_suffix(".html").exists()
    unknown = subprocess.run(
        [sys.executable, "-m", "cryptolab", "report", "--notebook", "nope", *args],
        cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert unknown.returncode == 2 and "no notebook 'nope'" in unknown.stderr


# -- 04_history ---------------------------------------------------------------------------------
def test_history_report_loads_checks_and_joins_another_symbol(tmp_path: Path) -> None:
    """`cryptolab report --notebook 04_history` on the offline stand-in archive: the load table,
    the klines check and the id run say what tests/reference.py says of the bundled sample."""
    start, end = "2026-11-01T00:00:00Z", "2026-11-01T00:30:00Z"
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", "report", "--notebook",
         str(NOTEBOOKS / "04_history.ipynb"), "--symbol", "ETHUSDT", "--start", start,
         "--end", end, "--interval", "5m", "--base-url", "sample", "--out", "out"],
        cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    stem = "04_history_ETHUSDT_20261101T000000Z_20261101T003000Z_5m"
    nb = nbformat.read(tmp_path / "out" / f"{stem}.ipynb", as_version=4)
    trades = period_trades("ETHUSDT", start, end)
    ids = sorted(trades.trade_id)
    loaded = output_of(nb, "hist.load_table(history)")
    assert re.search(
        rf"ETHUSDT-trades-2026-11-01.zip\s+loaded\s+{len(trades)}\s+{ids[0]}\s+{ids[-1]}", loaded
    ), loaded
    assert "**6/6 klines equal**" in output_of(nb, "check = hist.verify(")
    holes = [(a + 1, b - 1) for a, b in itertools.pairwise(ids) if b - a > 1]
    joined = output_of(nb, "hist.join_table(")
    shown = [tuple(int(v) for v in line.split()[2:4]) for line in joined.splitlines()
             if " hole " in f" {line} "]  # fmt: skip
    assert holes and shown == holes, joined
    assert (tmp_path / "out" / f"{stem}.html").is_file()


# -- nbval on the committed notebooks -----------------------------------------------------------
def nbval(*args: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(SANITIZE), "-p", "no:cacheprovider", "-q",
         *map(str, args)],
        cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def test_committed_notebooks_reproduce_their_outputs_under_nbval() -> None:
    notebooks = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    assert [p.stem for p in notebooks] == [
        "01_live_pipeline", "02_explore_trades", "03_market_report", "04_history", "05_market"
    ]  # fmt: skip
    code_cells = 0
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            code_cells += 1
            if "parameters" not in cell.metadata.get("tags", []):
                assert cell.outputs, f"{path.name}: a cell without stored output proves nothing"
    scratch_before = set(Path(tempfile.gettempdir()).glob("cryptolab-run-*"))
    done = nbval(*notebooks)
    assert done.returncode == 0, done.stdout[-6000:]
    assert f"{code_cells} passed" in done.stdout, done.stdout[-2000:]
    leftover = set(Path(tempfile.gettempdir()).glob("cryptolab-run-*")) - scratch_before
    assert not leftover, "01's scratch data directory is removed when the pipeline stops"


def test_nbval_fails_when_a_stored_value_differs(tmp_path: Path) -> None:
    """The comparison is real: a changed number in a table, the 8th decimal of a stored value,
    and a changed figure (Plotly JSON, which nbval compares as data), each fail their cell."""
    nb = nbformat.read(NOTEBOOKS / "03_market_report.ipynb", as_version=4)
    table = next(c for c in nb.cells if "summary_table" in c.source).outputs[0]["data"]
    assert "10,180" in table["text/plain"]
    for mime in ("text/plain", "text/html"):
        table[mime] = table[mime].replace("10,180", "10,181")
    rejected = next(c for c in nb.cells if "rejected_table" in c.source).outputs[0]["data"]
    assert "got '-0.50000000'" in rejected["text/plain"]
    for mime in ("text/plain", "text/html"):
        rejected[mime] = rejected[mime].replace("-0.50000000", "-0.50000001")
    chart = next(c for c in nb.cells if "candles_with_volume" in c.source).outputs[0]["data"]
    figure = chart["application/vnd.plotly.v1+json"]
    assert figure["layout"]["title"]["text"] == "BTCUSDT: 1m candles, VWAP and taker volume"
    figure["layout"]["title"]["text"] = "BTCUSDT: 5m candles, VWAP and taker volume"
    altered = tmp_path / "03_altered.ipynb"
    nbformat.write(nb, altered)
    done = nbval(altered)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "3 failed" in done.stdout, done.stdout[-3000:]
    assert "10,181" in done.stdout and "-0.50000001" in done.stdout, done.stdout[-3000:]


SANITIZED = [  # (what the cell prints now, what the notebook stored, masked?)
    ("took 3.2 s", "took 4.1 s", True),  # a wall-clock timing
    ("<IFrame at 0x7f5a99744750>", "<IFrame at 0x7f0011223344>", True),  # a memory address
    ("http://127.0.0.1:8050/", "http://127.0.0.1:41234/", True),  # a local port
    ("0.02377000", "0.02377099", False),  # the 7th and 8th decimals are data
    ("max delay 4.2 s", "max delay 4.3 s", False),  # a duration in the data, not a timing
    ("trades in 10 s windows", "trades in 20 s windows", False),
]


def test_the_sanitizer_masks_timings_ports_and_addresses_and_nothing_else(tmp_path: Path) -> None:
    """Each cell prints one text; its stored output is another. nbval must pass exactly the
    cells whose difference is wall-clock or machine noise."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for i, (now, stored, _) in enumerate(SANITIZED):
        cell = nbformat.v4.new_code_cell(f"print({now!r})", execution_count=i + 1)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored + "\n")]
        nb.cells.append(cell)
    path = tmp_path / "sanitize_cases.ipynb"
    nbformat.write(nb, path)
    done = nbval(path, "-rA")  # the summary lists every cell: "PASSED <path>::Cell 0"
    results = re.findall(r"^(PASSED|FAILED) \S*::Cell (\d+)", done.stdout, re.MULTILINE)
    verdicts = {int(cell): verdict for verdict, cell in results}
    want = {i: "PASSED" if masked else "FAILED" for i, (*_, masked) in enumerate(SANITIZED)}
    assert verdicts == want, done.stdout[-4000:]


# -- make lab -----------------------------------------------------------------------------------
def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_make_lab_registers_the_kernel_and_serves_jupyterlab(tmp_path: Path) -> None:
    port, token = free_port(), "cryptolab-test"
    jupyter = {n: str(tmp_path / n.lower()) for n in ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR")}
    args = f"--no-browser --port={port} --IdentityProvider.token={token}"
    args += " --allow-root" if os.geteuid() == 0 else ""  # JupyterLab refuses root otherwise
    lab = subprocess.Popen(
        ["make", "lab", f"ARGS={args}"],
        cwd=ROOT, env=environment(**jupyter), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        specs: dict[str, Any] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "cryptolab" not in specs:
            assert lab.poll() is None, lab.stdout.read() if lab.stdout else ""
            try:
                specs = _get(f"{base}/api/kernelspecs?token={token}")["kernelspecs"]
            except OSError:
                time.sleep(1)
        assert "cryptolab" in specs, "the kernel `make lab` registers"
        argv = specs["cryptolab"]["spec"]["argv"]
        assert Path(argv[0]) == Path(sys.executable), "the project's virtualenv python"
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as page:
            assert page.status == 200 and "JupyterLab" in page.read().decode()
        request = urllib.request.Request(
            f"{base}/api/kernels?token={token}",
            data=json.dumps({"name": "cryptolab"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            kernel = json.loads(response.read())
        channels = f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels?token={token}"
        printed = _execute_over_websocket(channels, "import cryptolab; print(cryptolab.__file__)")
        assert Path(printed.strip()) == ROOT / "cryptolab" / "__init__.py", "this checkout"
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            lab.wait(timeout=30)


def _execute_over_websocket(url: str, code: str, timeout: float = 120) -> str:
    """Run ``code`` in a server's kernel the way JupyterLab does (the kernel's websocket
    channels) and return what it printed."""
    import uuid

    import websocket

    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    request = {
        "header": {"msg_id": msg_id, "username": "test", "session": session,
                   "msg_type": "execute_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False},
    }  # fmt: skip
    deadline = time.monotonic() + timeout
    ws = websocket.create_connection(url, timeout=timeout)
    try:
        ws.send(json.dumps(request))
        printed = []
        while time.monotonic() < deadline:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["header"]["msg_type"]
            if kind == "stream":
                printed.append(message["content"]["text"])
            elif kind == "error":
                raise AssertionError(message["content"]["evalue"])
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return "".join(printed)
        raise AssertionError(f"no answer from the kernel within {timeout} s")
    finally:
        ws.close()
