"""What :mod:`benchmarks.bench_scale` measures around one scale point's process, from outside it:
CPU and memory of its process tree, Kafka lag, and each trade's freshness from the tape and the
store polls the process recorded."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil

from cryptolab.bus.topics import end_offsets
from cryptolab.feeds.tapes.tape import read_frames
from tests.reliability.soak import committed_offsets, tree_usage

SAMPLE_EVERY_S = 2.0
DEADLINE_S = 60.0
"""A trade whose candle did not count it within this long (or ever) is late: it counts as
infinitely late in the percentiles."""
PSS_EVERY = 3  # samples: PSS reads every process's smaps, a heavier read
TARGETS = {"freshness_p50_s": 1.5, "freshness_p99_s": 3.0, "peak_pss_mb": 3 * 1024}


def kind_of(process: psutil.Process, extra: set[int]) -> str:
    """python, spark_jvm, kafka_jvm or cluster (a standalone master/worker/executor)."""
    if process.pid in extra:
        return "cluster"
    try:
        cmdline = " ".join(process.cmdline())
    except psutil.Error:
        return "other"
    if "kafka.Kafka" in cmdline:
        return "kafka_jvm"
    if "java" in cmdline and "spark" in cmdline.lower():
        return "spark_jvm"
    return "python" if "python" in cmdline else "other"


class Sampler:
    """Every 2 s: CPU seconds of each process of the tree (kept after it exits), Kafka lag; every
    6 s: PSS of the tree (and of the cluster's processes, if any)."""

    def __init__(self, pid: int, extra_pids: list[int]) -> None:
        self.pid = pid
        self.extra = list(extra_pids)
        self.cpu: list[tuple[float, dict[str, float]]] = []  # (time, seconds by kind)
        self.lags: list[tuple[float, int, int]] = []  # (time, lag, end offset total)
        self.pss_mb: list[tuple[float, float]] = []
        self._seen: dict[int, tuple[str, float]] = {}

    def _processes(self) -> list[psutil.Process]:
        found = []
        for root in (self.pid, *self.extra):
            try:
                top = psutil.Process(root)
                found += [top, *top.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return list({p.pid: p for p in found}.values())

    def sample_cpu(self, now: float) -> None:
        extra = set(self.extra)
        for process in self._processes():
            try:
                times = process.cpu_times()
                # classified each time: the Spark JVM starts as the spark-submit script
                self._seen[process.pid] = (kind_of(process, extra), times.user + times.system)
            except psutil.Error:
                continue
        by_kind: dict[str, float] = defaultdict(float)
        for kind, seconds in self._seen.values():
            by_kind[kind] += seconds
        self.cpu.append((now, dict(by_kind)))

    def sample_lag(self, now: float, info: dict[str, Any]) -> None:
        try:
            end = sum(end_offsets(info["bootstrap"], info["topic"]).values())
        except Exception:  # the broker is stopping: no reading this time
            return
        done = [committed_offsets(p.parent) for p in Path(info["checkpoints"]).glob("*/*/commits")]
        known = [d for d in done if d is not None]
        if known:
            self.lags.append((now, max(0, end - min(known)), end))

    def sample_pss(self, now: float) -> None:
        total = sum(tree_usage(pid).pss_mb for pid in (self.pid, *self.extra))
        self.pss_mb.append((now, total))

    def run(self, child: subprocess.Popen[bytes], info_path: Path, budget: float) -> None:
        deadline = time.monotonic() + budget
        info: dict[str, Any] | None = None
        count = 0
        while child.poll() is None and time.monotonic() < deadline:
            now = time.time()
            self.sample_cpu(now)
            if info is None and info_path.exists():
                info = json.loads(info_path.read_text())
            if info is not None:
                self.sample_lag(now, info)
            if count % PSS_EVERY == 0:
                self.sample_pss(now)
            count += 1
            time.sleep(max(0.0, SAMPLE_EVERY_S - (time.time() - now)))

    def cpu_at(self, moment: float) -> dict[str, float]:
        """CPU seconds by kind at ``moment`` (linear between samples)."""
        times = [t for t, _ in self.cpu]
        index = int(np.searchsorted(times, moment))
        if index <= 0:
            return self.cpu[0][1]
        if index >= len(self.cpu):
            return self.cpu[-1][1]
        (t1, a), (t2, b) = self.cpu[index - 1], self.cpu[index]
        share = (moment - t1) / (t2 - t1) if t2 > t1 else 1.0
        return {k: a.get(k, 0.0) + share * (b.get(k, 0.0) - a.get(k, 0.0)) for k in b}


def freshness(tape: Path, observations: Path, t0_ms: int, e0_ms: int) -> dict[str, Any]:
    """Each trade's latency from its virtual trade time (``t0 + T - E0``) to the first poll whose
    candle of its (symbol, window) counted at least its position in that window (Kafka keeps a
    symbol's trades in publish order, so a candle counting n trades holds its first n). Past
    :data:`DEADLINE_S`, or never seen: late."""
    by_window: dict[tuple[str, int], list[int]] = defaultdict(list)
    for frame in read_frames(tape):
        data = orjson.loads(frame)["data"]
        by_window[(data["s"], data["T"] // 10_000 * 10_000)].append(data["T"])
    seen: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    if observations.exists():
        with observations.open() as handle:
            for line in handle:
                at, symbol, window, count = json.loads(line)
                seen[(symbol, window)].append((count, at))
    latencies, virtual_times = [], []
    for key, times in by_window.items():
        virtual = t0_ms + np.asarray(times, dtype=np.int64) - e0_ms
        polls = sorted(seen.get(key, []))
        counts = np.array([c for c, _ in polls], dtype=np.int64)
        at = np.array([a for _, a in polls], dtype=np.float64)
        index = np.searchsorted(counts, np.arange(1, len(times) + 1), side="left")
        found = index < len(counts)
        latency = np.full(len(times), np.inf)
        latency[found] = (at[index[found]] - virtual[found]) / 1000.0
        latency[latency > DEADLINE_S] = np.inf
        latencies.append(latency)
        virtual_times.append(virtual)
    latency = np.concatenate(latencies) if latencies else np.array([])
    virtual_all = np.concatenate(virtual_times) if virtual_times else np.array([])
    steady = latency[virtual_all >= steady_from(t0_ms, virtual_all)] if len(latency) else latency
    return {
        "trades": len(latency),
        "late": int(np.isinf(latency).sum()),
        "p50": _quantile(latency, 0.5),
        "p99": _quantile(latency, 0.99),
        "steady_p50": _quantile(steady, 0.5),
        "steady_p99": _quantile(steady, 0.99),
        "max_seen": float(latency[np.isfinite(latency)].max())
        if np.isfinite(latency).any()
        else None,
    }


def steady_from(t0_ms: int, virtual: np.ndarray) -> float:
    """Where the steady state starts: after the first third of the run, at most 60 s in (the
    first micro-batches run in a cold JVM)."""
    return t0_ms + min(60_000.0, (float(virtual.max()) - t0_ms) / 3)


def _quantile(values: np.ndarray, q: float) -> float | None:
    """An actual element (no interpolation, so an infinitely late trade stays infinite)."""
    if not len(values):
        return None
    value = float(np.quantile(values, q, method="inverted_cdf"))
    return round(value, 3) if np.isfinite(value) else float("inf")


def lag_trend(lags: list[tuple[float, int, int]], rate: float) -> dict[str, Any]:
    """Least-squares slope of the lag over the last third of the paced run (samples while the
    topic still grew). Bounded: the rise it predicts over that third is at most one second of
    trades."""
    growing = [(t, lag) for (t, lag, end), nxt in itertools.pairwise(lags) if nxt[2] > end]
    last = growing[2 * len(growing) // 3 :]
    if len(last) < 5:
        return {"slope_per_s": None, "bounded": None, "samples": len(last)}
    t = np.array([x for x, _ in last]) - last[0][0]
    y = np.array([v for _, v in last], dtype=float)
    slope = float(np.polyfit(t, y, 1)[0])
    rise = slope * (t[-1] - t[0])
    return {
        "slope_per_s": round(slope, 2),
        "rise_over_last_third": round(rise),
        "bounded": bool(rise <= rate),
        "samples": len(last),
    }


def point_row(
    symbols: int,
    rate: int,
    seconds: float,
    sampler: Sampler,
    fresh: dict[str, Any],
    result: dict[str, Any],
    t0: float,
) -> dict[str, Any]:
    """One point's row; CPU counted from ``t0`` (the first frame) until the lag is back to 0
    after the last trade was published."""
    published = int(result["published"])
    caught_up = next(
        (t for t, lag, end in sampler.lags if end >= published and lag == 0), sampler.cpu[-1][0]
    )
    before, after = sampler.cpu_at(t0), sampler.cpu_at(caught_up)
    cpu = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    steady = _steady_cpu(sampler, t0)
    tables = result["tables"]
    rows = sum(t["rows"] for t in tables.values())
    size = sum(t["bytes"] for t in tables.values())
    per = 1000 / published if published else float("nan")
    row: dict[str, Any] = {
        "symbols": symbols,
        "rate": rate,
        "seconds": seconds,
        "status": "ok",
        "trades": published,
        "tape_trades": fresh["trades"],
        "freshness_p50_s": fresh["p50"],
        "freshness_p99_s": fresh["p99"],
        "freshness_steady_p50_s": fresh["steady_p50"],
        "freshness_steady_p99_s": fresh["steady_p99"],
        "late_trades": fresh["late"],
        "max_lag": max((lag for _, lag, _ in sampler.lags), default=None),
        "cpu_s_per_1000": round(sum(cpu.values()) * per, 3),
        "cpu_s_per_1000_by_process": {k: round(v * per, 3) for k, v in sorted(cpu.items())},
        "cpu_window_s": round(caught_up - t0, 1),
        "cpu_s_per_1000_steady": steady,
        "peak_pss_mb": round(max((p for _, p in sampler.pss_mb), default=0.0)),
        "rows_per_trade": round(rows / published, 3) if published else None,
        "bytes_per_trade": round(size / published, 1) if published else None,
        "store_tables": tables,
        "stored_distinct": result["trades_stored_distinct"],
        "stored_equals_published": result["trades_stored_distinct"] == published == fresh["trades"],
    }
    return row


def _steady_cpu(sampler: Sampler, t0: float) -> float | None:
    """CPU seconds per 1,000 trades published after the first third of the run (at most 60 s
    in) until the last was published: the cost once the JVMs are warm."""
    if not sampler.lags:
        return None
    total = max(published for _, _, published in sampler.lags)
    stop = next(t for t, _, published in sampler.lags if published == total)
    start = t0 + min(60.0, (stop - t0) / 3)
    window = [(t, published) for t, _, published in sampler.lags if start <= t <= stop]
    if len(window) < 2 or window[-1][1] <= window[0][1]:
        return None
    (t1, n1), (t2, n2) = window[0], window[-1]
    used = sum(sampler.cpu_at(t2).values()) - sum(sampler.cpu_at(t1).values())
    return round(used * 1000 / (n2 - n1), 3)


def target_checks(row: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets (meant for 2,000 symbols x 5,000 trades/s, paced 10 minutes)."""
    trend = row.get("lag_trend") or {}
    return {
        "freshness p50 <= 1.5 s": (row.get("freshness_p50_s") or 1e9) <= 1.5,
        "freshness p99 <= 3 s": (row.get("freshness_p99_s") or 1e9) <= 3.0,
        "lag no upward trend over the last third": bool(trend.get("bounded")),
        "memory <= 3 GB": (row.get("peak_pss_mb") or 1e9) <= 3 * 1024,
        "stored == published": bool(row.get("stored_equals_published")),
    }
