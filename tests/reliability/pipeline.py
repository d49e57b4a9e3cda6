"""The whole pipeline under test, run as a user runs it (`cryptolab up` in a subprocess), and
the end-of-run check every fault test shares: the store against the tape's reference."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.helpers import dump_tables, environment, stored_candles
from tests.reference import assert_candles_equal, reference_candles, tape_trades


def pipeline_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A fresh topic per run; everything else from ``extra`` (CRYPTOLAB_* strings)."""
    return environment(data_dir, CRYPTOLAB_TOPIC=f"t_{uuid.uuid4().hex[:8]}", **extra)


@dataclass
class Up:
    """`cryptolab up ...` running in the background, its output in ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float

    @classmethod
    def start(cls, args: list[str], env: dict[str, str], log: Path) -> Up:
        handle = log.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cryptolab", "up", "--no-dash", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        return cls(proc, log, time.monotonic())

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 420) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"cryptolab up did not finish:\n{self.output()[-3000:]}") from None

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def alive(self) -> bool:
        return self.proc.poll() is None


def replay(tape: Path, speed: str) -> list[str]:
    """`cryptolab up` arguments: replay ``tape`` at ``speed`` until every trade is stored."""
    return ["--source", "replay", "--tape", str(tape), "--speed", speed, "--until-drained"]


def wait_until(what: str, done: Callable[[], bool], timeout: float, up: Up | None = None) -> float:
    """Poll ``done`` every 0.1 s; return when it was first true (monotonic)."""
    deadline = time.monotonic() + timeout
    while not done():
        if up is not None and not up.alive():
            raise AssertionError(f"cryptolab up exited while waiting for {what}:\n"
                                 f"{up.output()[-3000:]}")  # fmt: skip
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.1)
    return time.monotonic()


def commits(data_dir: Path, query: str = "trades") -> list[float]:
    """Modification times of the micro-batches committed so far by ``query``."""
    files = [p for p in data_dir.glob(f"checkpoints/*/{query}/commits/*") if p.name.isdigit()]
    return sorted(p.stat().st_mtime for p in files)


def verify_store(env: dict[str, str], tape: Path, symbols: list[str]) -> dict[str, Any]:
    """Assert the store holds exactly the tape's trades and reference candles; return counts
    for the report (trades in, stored, duplicates written, lost)."""
    trades = tape_trades(tape)
    tables = dump_tables(env)
    stored = [(row[0], int(row[1])) for row in tables["trades"]]
    expected = set(zip(trades["symbol"], trades["trade_id"].astype(int), strict=True))
    lost = len(expected - set(stored))
    unexpected = len(set(stored) - expected)
    assert lost == 0 and unexpected == 0, f"lost {lost} trades, {unexpected} not on the tape"
    assert len(stored) == len(set(stored)) == len(expected)
    assert_candles_equal(stored_candles(env, symbols), reference_candles(trades))
    return {
        "trades_in": len(expected),
        "trades_stored": len(stored),
        "lost": lost,
        "duplicates_visible": len(stored) - len(set(stored)),
        "physical_trade_rows": int(tables["trades_physical_rows"]),
        "candles_equal_reference": True,
    }
