"""History, then live, in one store with no gap: `cryptolab history load` of a published day,
then `cryptolab up --source binance` against the local Binance-protocol server, whose live
stream starts later than the history ends (the trades in between are only on REST)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from cryptolab.feeds.server.app import Faults, ReplayServer, Withhold
from cryptolab.frames import trade_frame
from tests.e2e.helpers import environment
from tests.vision_archive import build_archive, day_ms, serving

SYMBOL = "BTCUSDT"
DAY = date(2025, 1, 1)
LIVE, BETWEEN = 600, 150  # trades after the history; the first BETWEEN never come live

DUMP = """
import json
from cryptolab.settings import load_settings
from cryptolab.store import open_store
store = open_store(load_settings())
table = store.table("trades")
print(json.dumps({
    "ids": [r[0] for r in store.query_rows(
        f"SELECT trade_id FROM {table} FINAL WHERE symbol = 'BTCUSDT' ORDER BY trade_id")],
    "times": [r[0] for r in store.query_rows(
        f"SELECT toUnixTimestamp64Micro(trade_time) FROM {table} FINAL ORDER BY trade_id")],
    "physical": store.query_rows(f"SELECT count() FROM {table}")[0][0],
}))
"""


def cryptolab(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cryptolab", *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_live_continues_from_the_last_stored_trade_without_gap_or_duplicate(
    tmp_path: Path,
) -> None:
    archive = build_archive(tmp_path / "vision", {DAY: 2000}, (SYMBOL,))
    history = archive.of(SYMBOL, [DAY])
    last_id = int(history.trade_id.iloc[-1])
    env = environment(tmp_path / "data", CRYPTOLAB_CACHE_DIR=str(tmp_path / "cache"))
    with serving(archive.root) as server:
        loaded = cryptolab(["history", "load", "--symbols", SYMBOL, "--start", str(DAY),
                            "--end", str(DAY), "--base-url", server.url], env)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]

    # the next day's trades, in µs like Binance's timeUnit=MICROSECOND stream
    start_us = (day_ms(DAY) + 86_400_000 + 3_600_000) * 1000
    live = [
        trade_frame(SYMBOL, last_id + 1 + n, f"{94000 + n % 50}.01000000", "0.00100000",
                    start_us + n * 40_123, n % 3 == 0, True, start_us + n * 40_123 + 2_000)
        for n in range(LIVE)
    ]  # fmt: skip
    withheld = Withhold(SYMBOL, last_id + 1, last_id + BETWEEN)
    with ReplayServer(live, speed=20.0, faults=Faults(withhold=(withheld,)), port=0) as binance:
        run_env = {
            **env,
            "CRYPTOLAB_BINANCE_WS_URL": binance.ws_url,
            "CRYPTOLAB_BINANCE_REST_URL": binance.rest_url,
            "CRYPTOLAB_BINANCE_TIME_UNIT": "MICROSECOND",
            "CRYPTOLAB_SYMBOLS": SYMBOL,
        }
        up = cryptolab(["up", "--source", "binance", "--seconds", "25", "--no-dash"], run_env)
        sent = binance.stats.frames_sent
    assert up.returncode == 0, up.stderr[-4000:]
    log = up.stderr
    assert "LIVE Binance" in log and "REPLAY" not in log.split("pipeline started")[-1][:200]
    assert f"resuming symbol={SYMBOL} after last stored trade id={last_id}" in log
    assert f"gap symbol={SYMBOL} first_id={last_id + 1} last_id={last_id + BETWEEN}" in log
    assert sent == LIVE - BETWEEN, "the withheld trades never came live"

    done = subprocess.run([sys.executable, "-c", DUMP], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    stored = json.loads(done.stdout)
    first = int(history.trade_id.iloc[0])
    assert stored["ids"] == list(range(first, last_id + LIVE + 1))  # one unbroken run of ids
    assert stored["physical"] == len(stored["ids"])  # and nothing written twice
    want_times = list(history.trade_time) + [start_us + n * 40_123 for n in range(LIVE)]
    assert stored["times"] == want_times  # µs end to end, history and live
