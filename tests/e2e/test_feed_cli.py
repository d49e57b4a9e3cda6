"""The live path end to end, offline: `cryptolab serve` speaks Binance's protocol from a tape,
with faults; `cryptolab up --source binance` and `cryptolab record` run against it as a user
would run them against Binance."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptolab.feeds.frames import is_backfilled, trade_key
from cryptolab.feeds.server import Faults, ReplayServer
from cryptolab.feeds.synth import synth_frames
from cryptolab.feeds.tape import read_frames, write_frames
from tests.e2e.helpers import cryptolab, environment, stored_candles
from tests.reference import assert_candles_equal, reference_candles, tape_trades


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[str]]:
    """`cryptolab serve` in a subprocess; yields its CRYPTOLAB_BINANCE_* lines."""
    procs: list[subprocess.Popen[str]] = []
    lines: list[str] = []

    def start(args: list[str]) -> list[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cryptolab", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environment(tmp_path / "serve"),
        )
        procs.append(proc)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("CRYPTOLAB_BINANCE_"):
                lines.append(line.strip())
            if len(lines) == 2:
                return lines
        raise AssertionError(f"cryptolab serve exited with {proc.wait()}")

    yield start  # type: ignore[misc]
    for proc in procs:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def counters_from(log: str) -> dict[str, int]:
    line = [x for x in log.splitlines() if "binance feed stopped" in x][-1]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def test_up_against_the_local_server_with_faults_stores_the_exact_candles(
    tmp_path: Path, serve: object
) -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    tape = tmp_path / "tape.jsonl.gz"
    frames = list(synth_frames(symbols, 40, 8, seed=51))
    write_frames(tape, frames)
    btc = [k[1] for k in map(trade_key, frames) if k and k[0] == "BTCUSDT"]
    faults = "--drop-every 4 --shutdown-every 5.5 --max-connection-age 6 --ping-interval 1"
    withhold = f"BTCUSDT:{btc[30]}-{btc[49]}"
    args = ["--tape", str(tape), "--speed", "2", "--withhold", withhold, *faults.split()]
    urls = serve(args)  # type: ignore[operator]
    env = environment(
        tmp_path / "data",
        **dict(line.split("=", 1) for line in urls),
        CRYPTOLAB_FEED_ROTATE_SECONDS="3",
        # backfilled trades reach Spark late; keep them inside the candle watermark on a busy CPU
        CRYPTOLAB_WATERMARK_SECONDS="30",
    )
    done = cryptolab(
        [
            "up",
            "--source",
            "binance",
            "--symbols",
            ",".join(symbols),
            "--seconds",
            "32",
            "--no-dash",
        ],
        env,
    )
    assert "UNREACHABLE" not in done.stderr and "LIVE Binance" in done.stderr
    counters = counters_from(done.stderr)
    assert counters["trades"] == len(frames), counters
    assert counters["trades_backfilled"] >= 20 and counters["gaps_found"] >= 1, counters
    assert counters["reconnects"] >= 1 and counters["rotations"] >= 1, counters
    assert counters["trades_lost"] == 0, counters
    assert_candles_equal(stored_candles(env, symbols), reference_candles(tape_trades(tape)))


def test_record_writes_received_frames_verbatim_and_recovers_dropped_ones(
    tmp_path: Path,
) -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    frames = list(synth_frames(symbols, 10, 10, seed=52))
    out = tmp_path / "recorded.jsonl.gz"
    with ReplayServer(frames, speed=2.5, faults=Faults(drop_every=1.5), port=0) as server:
        env = environment(
            tmp_path / "data",
            CRYPTOLAB_BINANCE_WS_URL=server.ws_url,
            CRYPTOLAB_BINANCE_REST_URL=server.rest_url,
        )
        done = cryptolab(
            ["record", "--symbols", ",".join(symbols), "--out", str(out), "--seconds", "9"], env
        )
    recorded = list(read_frames(out))
    assert f"wrote {len(recorded)} frames" in done.stdout
    assert sorted(map(trade_key, recorded)) == sorted(map(trade_key, frames))  # type: ignore[type-var]
    live = [f for f in recorded if not is_backfilled(f)]
    assert set(live) <= set(frames), "live frames are written exactly as received"
    assert len(live) < len(recorded), "dropped connections made the recorder backfill"
    assert not (tmp_path / "data" / "feed").exists(), "recording keeps no gap state"


def test_record_says_clearly_when_binance_is_unreachable(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", "record", "--out", str(tmp_path / "t.jsonl")],
        text=True,
        capture_output=True,
        env=environment(
            tmp_path,
            CRYPTOLAB_BINANCE_WS_URL="ws://127.0.0.1:9",
            CRYPTOLAB_CONNECT_TIMEOUT_SECONDS="2",
        ),
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "cannot reach Binance" in done.stderr
    assert "Traceback" not in done.stderr
