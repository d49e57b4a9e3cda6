"""The store's disk fills up: writes are retried (Kafka holds the backlog) and nothing is
lost when space comes back; if it never does, `cryptolab up` stops with an error that says
what is wrong and the tables stay intact for the restart."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.e2e.helpers import cryptolab
from tests.reliability.disk import fill, small_disk
from tests.reliability.pipeline import (
    Up,
    commits,
    pipeline_env,
    replay,
    verify_store,
    wait_until,
)
from tests.reliability.results import record

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FULL_FOR_S = 12.0


def _tape(tmp_path: Path, seed: int) -> Path:
    tape = tmp_path / "tape.jsonl.gz"
    write_frames(tape, synth_frames(SYMBOLS, 120, 30, seed=seed))
    return tape


CHECK_TABLES = """
from cryptolab import load_settings
from cryptolab.store import open_store
store = open_store(load_settings(), create=False)
names = store.query_rows(
    "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
    {"db": store.database})
for (name,) in names:
    rows = store.query_rows(
        f"CHECK TABLE {store.table(name)} SETTINGS check_query_single_value_result = 1")
    print(name, "OK" if rows and all(int(r[0]) == 1 for r in rows) else f"BROKEN {rows}")
"""


def _check_tables(env: dict[str, str]) -> list[str]:
    """CHECK TABLE on every MergeTree table, in a separate process; each must be OK."""
    done = subprocess.run([sys.executable, "-c", CHECK_TABLES], env=env, text=True,
                          capture_output=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line]
    assert lines and all(line.endswith(" OK") for line in lines), done.stdout
    return [line.split()[0] for line in lines]


@pytest.mark.row("fault", "ClickHouse disk full for a while")
def test_disk_full_for_a_while_then_freed_loses_nothing(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    tape = _tape(tmp_path, seed=93)
    with small_disk(tmp_path / "disk", 96) as disk:
        env = pipeline_env(tmp_path / "data", CRYPTOLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
                           CRYPTOLAB_CLICKHOUSE_URL=f"chdb://{disk / 'clickhouse'}")  # fmt: skip
        up = Up.start(replay(tape, "2"), env, tmp_path / "up.log")
        try:
            wait_until("stored batches", lambda: len(commits(tmp_path / "data")) >= 1, 240, up)
            ballast = fill(disk)
            full_at = time.monotonic()
            wait_until("a failed store write", lambda: "store write failed" in up.output(), 60, up)
            time.sleep(max(0.0, FULL_FOR_S - (time.monotonic() - full_at)))
            failed_writes = up.output().count("store write failed")
            ballast.unlink()
            freed_at = time.monotonic()
            recovered_at = wait_until(
                "the store write to recover",
                lambda: "store write recovered" in up.output(),
                120,
                up,
            )
            assert up.wait() == 0, up.output()[-3000:]
            counts = verify_store(env, tape, SYMBOLS)
            tables = _check_tables(env)
        finally:
            if up.alive():
                up.kill()
    assert "Traceback" not in up.output()
    record(
        "fault",
        "ClickHouse disk full for a while",
        injected=f"store's tmpfs filled to ENOSPC mid-stream for {freed_at - full_at:.0f} s, "
        "then the ballast removed",
        **counts,
        failed_writes_retried=failed_writes,
        tables_checked_ok=len(tables),
        recover_seconds=round(recovered_at - freed_at, 1),
    )


@pytest.mark.row("fault", "ClickHouse disk stays full")
def test_disk_that_stays_full_stops_with_a_clear_error_and_intact_tables(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    tape = _tape(tmp_path, seed=94)
    with small_disk(tmp_path / "disk", 96) as disk:
        env = pipeline_env(tmp_path / "data", CRYPTOLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
                           CRYPTOLAB_CLICKHOUSE_URL=f"chdb://{disk / 'clickhouse'}",
                           CRYPTOLAB_STORE_RETRY_SECONDS="6")  # fmt: skip
        up = Up.start(replay(tape, "2"), env, tmp_path / "up.log")
        try:
            wait_until("stored batches", lambda: len(commits(tmp_path / "data")) >= 1, 240, up)
            ballast = fill(disk)
            full_at = time.monotonic()
            rc = up.wait(timeout=180)
            stopped_after = time.monotonic() - full_at
        finally:
            if up.alive():
                up.kill()
        output = up.output()
        assert rc != 0
        error = [line for line in output.splitlines() if "disk holding the ClickHouse data is full"
                 in line]  # fmt: skip
        assert error, output[-3000:]
        assert re.search(r"Nothing is lost: restart once fixed", error[-1])
        ballast.unlink()
        tables = _check_tables(env)
        done = cryptolab(["up", "--source", "replay", "--tape", str(tape), "--speed", "max",
                          "--until-drained", "--no-dash"], env)  # fmt: skip
        assert "drained" in done.stderr
        counts = verify_store(env, tape, SYMBOLS)
    record(
        "fault",
        "ClickHouse disk stays full",
        injected="store's tmpfs filled to ENOSPC mid-stream and left full "
        "(CRYPTOLAB_STORE_RETRY_SECONDS=6)",
        stopped_after_seconds=round(stopped_after, 1),
        error=error[-1][error[-1].index("still failing") :][:200],
        tables_checked_ok=len(tables),
        **counts,
    )
