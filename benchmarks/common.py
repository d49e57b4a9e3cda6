"""Shared helpers of the benchmark suite: repeats, results, machine description.

A row is a :class:`Result`: our value once per repeat, each baseline's values from the same
rounds (ours and the baselines alternate within each round, so a load spike from other work on
the machine hits all of them alike), the target split into :class:`Clause` checks, and an
``error`` when a correctness check of the measurement itself failed (then the row's status is
``failed`` whatever the numbers say).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def spread(values: list[float]) -> dict[str, Any]:
    """min / median / max of one value's repeats, and the repeats themselves."""
    clean = [float(v) for v in values]
    if not clean:
        return {"min": None, "median": None, "max": None, "runs": []}
    return {
        "min": min(clean),
        "median": statistics.median(clean),
        "max": max(clean),
        "runs": clean,
    }


@dataclass
class Baseline:
    """What ours is compared with: ``values`` from the same rounds as ours."""

    name: str
    values: list[float]
    note: str = ""


@dataclass
class Clause:
    """One checkable part of a row's target, e.g. ``>= 30x baseline`` with the measured value."""

    text: str
    value: float | None
    met: bool


@dataclass
class Result:
    """One row of reports/benchmarks.md."""

    id: int
    measure: str
    unit: str
    ours: list[float]
    target: str
    clauses: list[Clause]
    baselines: list[Baseline] = field(default_factory=list)
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # a check of the measurement failed (e.g. trades lost, timed out)

    @property
    def higher_is_better(self) -> bool:
        return "/s" in self.unit

    def ratio(self, baseline: Baseline) -> float | None:
        """How many times better than ``baseline``, medians (below 1 means worse)."""
        ours, base = spread(self.ours)["median"], spread(baseline.values)["median"]
        if not ours or not base:
            return None
        return float(ours / base if self.higher_is_better else base / ours)

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        return "met" if self.clauses and all(c.met for c in self.clauses) else "missed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "measure": self.measure,
            "unit": self.unit,
            "status": self.status,
            "error": self.error,
            "ours": spread(self.ours),
            "baselines": [
                {"name": b.name, "note": b.note, **spread(b.values), "ratio": self.ratio(b)}
                for b in self.baselines
            ],
            "target": self.target,
            "clauses": [asdict(c) for c in self.clauses],
            "notes": self.notes,
            "extra": self.extra,
        }


def interleaved(fns: list[Callable[[], Any]], rounds: int) -> list[list[float]]:
    """Wall seconds of each of ``fns``, once per round, run in turn within each round (the
    order rotates each round so that none always runs first)."""
    times: list[list[float]] = [[] for _ in fns]
    for round_ in range(rounds):
        order = list(range(len(fns)))
        order = order[round_ % len(fns) :] + order[: round_ % len(fns)]
        for index in order:
            started = time.perf_counter()
            fns[index]()
            times[index].append(time.perf_counter() - started)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def git_commit() -> str:
    """The checked-out commit, ``+dirty`` when tracked or untracked files differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain") else "")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def machine() -> dict[str, str]:
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    import chdb
    import clickhouse_connect
    import dash
    import kafka
    import pyspark
    from kafka.record import util as kafka_crc

    return {
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "java": (java.stderr.splitlines() or ["?"])[0],
        "pyspark": pyspark.__version__,
        "chdb": getattr(chdb, "__version__", "?"),
        "clickhouse_connect": clickhouse_connect.__version__,
        "kafka_python": kafka.__version__,
        # row 1: kafka-python checksums record batches in C only with this extension
        "kafka_python_crc32c": "C" if kafka_crc.crc32c_c is not None else "pure Python",
        "dash": dash.__version__,
    }


STANDALONE = Path("build/results/bench/standalone")
"""Where the standalone breakdowns (producer_crc, chdb_read_floor, dashboard_latency, ...) write
by default: ignored, so running one never dirties the checkout."""
