"""The live path offline: `cryptolab record` against the local Binance-protocol server (the
whole pipeline under feed faults is in tests/reliability/test_fault_feed.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptolab.feeds.server.app import Faults, ReplayServer
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import read_frames
from cryptolab.frames import is_backfilled, trade_key
from tests.e2e.helpers import cryptolab, environment


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
