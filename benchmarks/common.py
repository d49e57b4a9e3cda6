"""Shared helpers of the benchmark suite: timing, results, machine description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Result:
    """One row of reports/benchmarks.md: our number, the baseline's, the ratio, the target."""

    id: int
    measure: str
    unit: str
    ours: float
    baseline: float | None
    target: str
    passed: bool
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def higher_is_better(self) -> bool:
        return "/s" in self.unit

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (below 1 means worse)."""
        if not self.baseline or not self.ours:
            return None
        if self.higher_is_better:
            return self.ours / self.baseline
        return self.baseline / self.ours

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Fastest wall time of ``repeat`` calls, seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def best_of_interleaved(fns: list[Callable[[], Any]], repeat: int = 7) -> list[float]:
    """Fastest wall time of each of ``fns`` over ``repeat`` rounds, run in turn within each round,
    so that a load spike from other work on the machine hits all of them alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for index, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


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
