"""Soak: 20 minutes (SOAK_MINUTES) of the whole embedded stack at 10x a Binance-like rate,
started in the background when the session begins (see tests/conftest.py) and judged here at
the end of the session: nothing lost or doubled; consumer lag, memory, open files and threads
bounded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from tests.reference import tape_trades
from tests.reliability.results import REPORTS, record

NODE = "tests/reliability/test_soak.py::test_soak_keeps_lag_memory_and_files_bounded"
OUT_DIR = REPORTS / "reliability" / "soak"
WARMUP_S = 60.0
RATE = 460


class SoakRun:
    """The background soak process (tests/reliability/soak.py)."""

    def __init__(self, minutes: float) -> None:
        self.minutes = minutes
        self.work = Path(tempfile.mkdtemp(prefix="cryptolab-soak-"))
        self.out = self.work / "result.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.soak", "--minutes", str(minutes),
             "--work", str(self.work), "--out", str(self.out)],
            stdout=(self.work / "samples.log").open("wb"), stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        self.started = time.monotonic()

    def result(self) -> dict[str, Any]:
        budget = self.minutes * 60 + 600  # the run, plus start-up and drain on a loaded machine
        remaining = budget - (time.monotonic() - self.started)
        try:
            self.proc.wait(timeout=max(remaining, 1))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("the soak did not finish in time") from None
        log = (self.work / "samples.log").read_text(errors="replace")
        assert self.proc.returncode == 0 and self.out.exists(), log[-3000:]
        return dict(json.loads(self.out.read_text()))

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # soak.py stops its stack and broker on SIGTERM
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.work, ignore_errors=True)


def soak_minutes() -> float:
    return float(os.environ.get("SOAK_MINUTES", "20"))


def thirds(values: list[float]) -> tuple[list[float], list[float]]:
    """The middle and last thirds of a series (the first third is warm-up)."""
    n = len(values)
    return values[n // 3 : 2 * n // 3], values[2 * n // 3 :]


def plot(samples: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t"] / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    series = (("lag", "lag (messages)"), ("pss_mb", "memory, PSS (MB)"),
              ("open_files", "open files"), ("threads", "threads"))  # fmt: skip
    for ax, (key, label) in zip(axes, series, strict=True):
        ax.plot(minutes, [s[key] if s[key] is not None else float("nan") for s in samples])
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes since `cryptolab up` started")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_soak_keeps_lag_memory_and_files_bounded(request: pytest.FixtureRequest) -> None:
    run: SoakRun | None = request.config.stash.get(SOAK_KEY, None)
    if run is None:  # selected on its own (e.g. by node id): run it now
        run = SoakRun(soak_minutes())
    try:
        result = run.result()
        tape = tape_trades(Path(result["tape"]))
    finally:
        run.cleanup()
    assert result["returncode"] == 0, result["log_tail"]
    assert "drained: every published trade is in the store" in result["log_tail"]
    samples = [s for s in result["samples"] if s["t"] >= WARMUP_S and s["lag"] is not None]
    assert len(samples) >= 6, "too few samples to judge"

    # nothing lost, nothing doubled: per symbol, a gap-free run of the tape's ids from its first
    stored = result["stored"]["symbols"]
    for symbol, (count, low, high) in stored.items():
        ids = tape[tape["symbol"] == symbol]["trade_id"]
        assert low == int(ids.min()), f"{symbol}: the first trade is missing"
        assert count == high - low + 1, f"{symbol}: {high - low + 1 - count} trades lost"
    total = sum(v[0] for v in stored.values())

    lag = [float(s["lag"]) for s in samples]
    pss = [float(s["pss_mb"]) for s in samples]
    files = [float(s["open_files"]) for s in samples]
    threads = [float(s["threads"]) for s in samples]
    lag_mid, lag_end = thirds(lag)
    pss_mid, pss_end = thirds(pss)
    files_mid, files_end = thirds(files)
    threads_mid, threads_end = thirds(threads)
    path = OUT_DIR / "soak.png"
    minutes = result["wall_seconds"] / 60
    plot(result["samples"], path, f"soak: {minutes:.0f} min at {RATE} trades/s")
    (OUT_DIR / "samples.json").write_text(json.dumps(result["samples"]) + "\n")
    record(
        "soak",
        f"whole stack at {RATE} trades/s",
        minutes=result["minutes"],
        trades_stored=total,
        trades_lost=0,
        physical_trade_rows=result["stored"]["physical"],
        samples=len(result["samples"]),
        lag_max=max(lag),
        lag_mean_middle_third=round(mean(lag_mid)),
        lag_mean_last_third=round(mean(lag_end)),
        memory_pss_mb_max=max(pss),
        memory_pss_mb_max_middle_third=max(pss_mid),
        memory_pss_mb_max_last_third=max(pss_end),
        open_files_max_middle_third=max(files_mid),
        open_files_max_last_third=max(files_end),
        threads_max_middle_third=max(threads_mid),
        threads_max_last_third=max(threads_end),
        chdb_thread_stat_files_max=max(s["thread_stat_files"] for s in samples),
        plot="reliability/soak/soak.png",
    )
    # bounded: the last third is no worse than the middle third, beyond noise
    assert max(lag) <= 60 * RATE, f"lag reached {max(lag):.0f} messages (> 60 s of trades)"
    assert mean(lag_end) <= 2 * mean(lag_mid) + 5 * RATE, "consumer lag trends upward"
    assert max(pss_end) <= 1.15 * max(pss_mid), "memory trends upward"
    assert max(files_end) <= max(files_mid) + 25, "open file handles trend upward"
    assert max(threads_end) <= 1.1 * max(threads_mid) + 10, "threads trend upward"


SOAK_KEY = pytest.StashKey[SoakRun]()
