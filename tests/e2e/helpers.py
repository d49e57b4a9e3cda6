"""Running the CLI as a user would, in subprocesses, for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptolab.model import CANDLE_COLUMNS
from tests.reference import parse_candles_csv

TIMEOUT = 420


def cryptolab(
    args: list[str], env: dict[str, str], timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"cryptolab {' '.join(args)} failed:\n{done.stderr[-4000:]}"
    return done


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAB_")}
    if "CRYPTOLAB_CACHE_DIR" in os.environ:
        env["CRYPTOLAB_CACHE_DIR"] = os.environ["CRYPTOLAB_CACHE_DIR"]
    env["CRYPTOLAB_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def stored_candles(
    env: dict[str, str], symbols: list[str], interval: str = "10s"
) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for symbol in symbols:
        out = cryptolab(
            ["query", "candles", "--symbol", symbol, "--interval", interval, "--format", "csv"],
            env,
            timeout=120,
        ).stdout
        assert out.splitlines()[0] == ",".join(CANDLE_COLUMNS)
        starts = [line.split(",")[1] for line in out.splitlines()[1:]]
        assert starts == sorted(starts) and all(s.endswith("Z") for s in starts)
        result.update(parse_candles_csv(out))
    return result


def replay_until_drained(tape: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return cryptolab(
        [
            "up",
            "--source",
            "replay",
            "--tape",
            str(tape),
            "--speed",
            "max",
            "--until-drained",
            "--no-dash",
        ],
        env,
    )


DUMP = """
import sys, orjson
from cryptolab import load_settings
from cryptolab.store import open_store
store = open_store(load_settings())
out = {}
for table, key, skip in (("trades", "symbol, trade_id", "stored_at, ingest_time"),
                         ("candles_10s", "symbol, window_start", "updated_at")):
    rows = store.query_rows(
        f"SELECT * EXCEPT ({skip}) FROM {store.table(table)} FINAL ORDER BY {key}")
    out[table] = [[str(v) for v in row] for row in rows]
    out[table + "_physical_rows"] = store.query_rows(
        f"SELECT count() FROM {store.table(table)}")[0][0]
out["dropped_by_watermark"] = store.query_rows(
    f"SELECT sum(rows_dropped_by_watermark) FROM {store.table('pipeline_metrics')}")[0][0]
out["metric_rows"] = store.query_rows(
    f"SELECT count() FROM {store.table('pipeline_metrics')}")[0][0]
sys.stdout.write(orjson.dumps(out).decode())
"""


def dump_tables(env: dict[str, str]) -> dict[str, Any]:
    """Every row of trades and candles_10s (FINAL), as strings, read in a separate process."""
    import orjson

    done = subprocess.run(
        [sys.executable, "-c", DUMP],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(orjson.loads(done.stdout))
