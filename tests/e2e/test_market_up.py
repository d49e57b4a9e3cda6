"""`cryptolab up --symbols all` against the local Binance-protocol server, as a user runs it: the
store ends up with exactly the trading symbols' trades, each once — a symbol listed mid-run
included from its first trade, a delisted one kept up to its delisting, idle ones absent."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from cryptolab.feeds.server.app import ReplayServer
from tests.e2e.helpers import cryptolab, environment
from tests.market_tape import market_tape

STORED = """
import json
from cryptolab import load_settings
from cryptolab.store import open_store
store = open_store(load_settings(), create=False)
trades = store.table("trades")
keys = store.query_rows(f"SELECT symbol, trade_id FROM {trades} FINAL")
doubled = store.query_rows(
    f"SELECT count() FROM (SELECT symbol, trade_id FROM {trades} GROUP BY symbol, trade_id "
    "HAVING count() > 1)")[0][0]
in_candles = store.query_rows(
    f"SELECT symbol, sum(trades) FROM {store.table('candles_10s')} FINAL GROUP BY symbol")
print(json.dumps({"keys": keys, "doubled": doubled, "in_candles": dict(in_candles)}))
"""


def test_up_symbols_all_stores_exactly_the_trading_symbols_trades(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    tape = market_tape()
    data = tmp_path / "data"
    with ReplayServer(tape.frames, speed=1.0, port=0, market=tape.market) as server:
        env = environment(
            data,
            CRYPTOLAB_BINANCE_WS_URL=server.ws_url,
            CRYPTOLAB_BINANCE_REST_URL=server.rest_url,
            CRYPTOLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
            CRYPTOLAB_TOPIC=f"t_{uuid.uuid4().hex[:8]}",
            CRYPTOLAB_SYMBOLS_REFRESH_SECONDS="2",
        )
        run = cryptolab(
            ["up", "--source", "binance", "--symbols", "all", "--seconds", "50", "--no-dash"], env
        )
        stats = server.stats
    at_start = sum(status == "TRADING" for status in tape.market.statuses(None).values())
    assert f"LIVE Binance all {at_start} trading symbols" in run.stderr, run.stderr[-2000:]
    assert server.finished.is_set(), "the whole tape was played during the run"
    assert stats.violations() == [], stats
    done = subprocess.run(
        [sys.executable, "-c", STORED], env=env, text=True, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stored = json.loads(done.stdout)
    keys = {(s, int(i)) for s, i in stored["keys"]}
    missing, extra = sorted(tape.expected - keys), sorted(keys - tape.expected)
    assert not missing and not extra, f"missing {missing[:5]} extra {extra[:5]}"
    assert stored["doubled"] == 0, "each trade stored once"
    per_symbol: dict[str, int] = {}
    for symbol, _ in tape.expected:
        per_symbol[symbol] = per_symbol.get(symbol, 0) + 1
    assert stored["in_candles"] == per_symbol, "the candles account for every stored trade"
    assert not set(stored["in_candles"]) & set(tape.idle)
    assert tape.listed in per_symbol and tape.delisted in per_symbol


def test_an_unknown_symbol_is_a_clear_error_with_close_matches(tmp_path: Path) -> None:
    tape = market_tape(count=40, seconds=5)
    with ReplayServer(tape.frames, speed=1.0, port=0, market=tape.market) as server:
        env = environment(
            tmp_path,
            CRYPTOLAB_BINANCE_WS_URL=server.ws_url,
            CRYPTOLAB_BINANCE_REST_URL=server.rest_url,
        )
        done = subprocess.run(
            [sys.executable, "-m", "cryptolab", "up", "--symbols", "BTCUSDT,ETHUSTD", "--no-dash"],
            env=env,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "unknown symbol(s) for Binance spot: ETHUSTD (did you mean ETHUSDT" in done.stderr
    assert "Traceback" not in done.stderr
