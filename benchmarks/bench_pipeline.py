"""Rows 5 (drain capacity), 8 (peak RSS at 10x) and 9 (cold start): the whole embedded stack
(real Kafka, Spark, chDB)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import Baseline, Clause, Result, spread
from benchmarks.streams import (
    CONFIGS,
    OURS,
    RATE,
    SEED,
    SYMBOLS,
    TRIGGER_ONLY,
    live_source,
    paced_frames,
    publish_paced,
    running_job,
)
from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.settings import load_settings
from cryptolab.stack import Stack
from cryptolab.store.schema import TRADES
from cryptolab.streaming.job import StreamingJob

PACED_RATE = 5_000  # trades/s published during the paced runs of row 5


def drain_rate(bootstrap: str, trades: int, **overrides: Any) -> tuple[float, str | None]:
    """Trades/s the streaming job stores from a backlog already in Kafka, and what is wrong
    with what it stored (None: every trade published is stored once)."""
    with running_job(bootstrap, start=False, **overrides) as (job, store, settings):
        producer = TradeProducer(settings, bootstrap)
        seconds = trades / (RATE * 100 * len(SYMBOLS))
        producer.publish_all(synth_frames(SYMBOLS, seconds, RATE * 100, seed=9), bulk=True)
        producer.flush()
        producer.close()
        target = end_offsets(bootstrap, settings.topic)
        started = time.perf_counter()
        job.start()
        while not job.caught_up(target):
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        published = sum(target.values())
        distinct = store.query_rows(
            f"SELECT uniqExact(symbol, trade_id) FROM {store.table(TRADES)}"  # noqa: S608
        )[0][0]
    problem = None if distinct == published else f"stored {distinct:,} of {published:,} trades"
    return published / elapsed, problem


def paced_lag(bootstrap: str, rate: float, seconds: float, **overrides: Any) -> dict[str, Any]:
    """Publish synthetic trades at ``rate``/s for ``seconds`` into the running job; sample the
    consumer lag (topic end offsets minus what the slower query has committed) every 2 s."""
    frames = paced_frames(rate, seconds, seed=11)
    lags: list[int] = []  # one sample every 2 s
    with running_job(bootstrap, **overrides) as (job, _, settings):
        producer = TradeProducer(settings, bootstrap)
        try:
            sample = lambda: lags.append(_lag(job, bootstrap, settings.topic))  # noqa: E731
            publish_paced(producer, frames, rate, sample)
            sample()
        finally:
            producer.close()
    return {
        "max_lag": max(lags),
        "max_lag_after_10s": max(lags[5:], default=lags[-1]),
        "last_lag": lags[-1],
    }


def _lag(job: StreamingJob, bootstrap: str, topic: str) -> int:
    job.raise_if_failed()
    end = end_offsets(bootstrap, topic)
    done = job.processed().values()
    return sum(max(0, o - min((d.get(p, 0) for d in done), default=0)) for p, o in end.items())


def capacity(
    bootstrap: str, repeats: int = 3, trades: int = 200_000, paced_seconds: float = 45
) -> Result:
    """Every job drains the same backlog, in a JIT-warm JVM (the first drain of a process runs
    ~2x slower: a warm-up drain comes first), rotating within each round; then each is paced."""
    cold, problem = drain_rate(bootstrap, trades // 4)
    problems = [f"warm-up: {problem}"] if problem else []
    rates: dict[str, list[float]] = {c.name: [] for c in CONFIGS}
    for round_ in range(repeats):
        shift = round_ % len(CONFIGS)
        for config in CONFIGS[shift:] + CONFIGS[:shift]:
            rate, problem = drain_rate(bootstrap, trades, **config.overrides)
            rates[config.name].append(round(rate))
            problems += [f"{config.name}: {problem}"] if problem else []
    seconds = float(os.environ.get("CRYPTOLAB_BENCH_PACED_S", paced_seconds))
    paced = {c.name: paced_lag(bootstrap, PACED_RATE, seconds, **c.overrides) for c in CONFIGS}
    result = Result(
        5,
        "pipeline capacity: Kafka backlog -> trades + candles stored",
        "trades/s",
        rates[OURS.name],
        ">= 10x baseline and >= 5,000 trades/s",
        [],
        [Baseline(c.name, rates[c.name], c.note) for c in (SEED, TRIGGER_ONLY)],
        notes=f"each job drains the same {trades:,}-trade backlog (a fresh topic each time) "
        f"until both queries have committed every offset, after a {trades // 4:,}-trade "
        "warm-up drain; each drain is checked to have stored every trade. Then each job runs "
        f"paced at {PACED_RATE:,} trades/s for {seconds:g} s with the consumer lag (messages) "
        "sampled every 2 s (CRYPTOLAB_BENCH_PACED_S=600: 10 min)",
        extra={"cold_first_drain_trades_per_s": round(cold)}
        | {f"paced_{c.name}": paced[c.name] for c in CONFIGS},
        error="; ".join(problems) or None,
    )
    ours, ratio = spread(result.ours)["median"], result.ratio(result.baselines[0]) or 0.0
    result.clauses = [
        Clause(">= 10x the seed", round(ratio, 2), ratio >= 10),
        Clause(">= 5,000 trades/s", ours, ours >= 5000),
    ]
    return result


def peak_rss_run(seconds: float) -> dict[str, Any]:
    """Whole embedded stack (this process, Spark JVM, local broker) at 10x a Binance-like rate."""
    sent: list[dict[str, Any]] = []
    peak = 0
    lags: list[int] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        settings = load_settings(data_dir=Path(tmp), reconcile_every_seconds=0)
        stack = Stack(settings, live_source(seconds * 10, 10.0, sent)).start(dash=True)
        me = psutil.Process()
        try:
            deadline = time.monotonic() + seconds + 60
            while not stack.status.feed_done and time.monotonic() < deadline:
                procs = [me, *me.children(recursive=True)]
                if stack.broker is not None and stack.broker.status().pid:
                    procs.append(psutil.Process(stack.broker.status().pid))
                peak = max(peak, sum(_rss(p) for p in {p.pid: p for p in procs}.values()))
                assert stack.job is not None
                stack.job.raise_if_failed()
                lags.append(stack.kafka_lag())
                time.sleep(1.0)
            finished = stack.status.feed_done
        finally:
            stack.stop()
    return {"gb": peak / 1e9, "sent": len(sent), "max_lag": max(lags, default=0),
            "finished": finished}  # fmt: skip


def peak_rss(repeats: int = 2, seconds: float = 30) -> Result:
    runs = [peak_rss_run(seconds) for _ in range(repeats)]
    unfinished = sum(not r["finished"] for r in runs)
    result = Result(
        8,
        "peak RSS of the whole embedded stack at 10x replay",
        "GB",
        [round(r["gb"], 3) for r in runs],
        "<= 3 GB",
        [],
        notes=f"{len(SYMBOLS)} symbols x {RATE * 10:g} trades/s for {seconds:g} s per run, "
        "Python + Spark JVM + Kafka JVM + chDB + Dash; RSS summed over the processes every 1 s",
        extra={
            "trades_per_run": spread([float(r["sent"]) for r in runs]),
            "max_lag_messages": spread([float(r["max_lag"]) for r in runs]),
        },
        error=f"{unfinished} run(s) did not finish their feed in time" if unfinished else None,
    )
    gb = spread(result.ours)["median"]
    result.clauses = [Clause("<= 3 GB", gb, gb <= 3)]
    return result


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


COLD_START = ["up", "--source", "replay", "--speed", "1", "--no-dash", "--seconds", "40"]


def cold_start_run() -> tuple[float | None, str | None]:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        cmd = [sys.executable, "-m", "cryptolab", "--data-dir", tmp, *COLD_START]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    match = re.search(r"first candle queryable ([0-9.]+) s after start", done.stderr)
    if done.returncode != 0 or match is None:
        return None, f"`cryptolab {' '.join(COLD_START)}` exited {done.returncode}" + (
            "" if match else " without a first candle"
        )
    return float(match.group(1)), None


def cold_start(repeats: int = 3) -> Result:
    runs = [cold_start_run() for _ in range(repeats)]
    values = [v for v, _ in runs if v is not None]
    errors = [e for _, e in runs if e]
    result = Result(
        9,
        "`cryptolab up` cold start to first candle (jars cached)",
        "s",
        values,
        "<= 30 s",
        [],
        notes=f"`cryptolab {' '.join(COLD_START)}` in a fresh data dir, {repeats} runs: "
        "starts the local Kafka broker and Spark; the time is the one it logs",
        error="; ".join(errors) or None,
    )
    worst = spread(values)["median"] if values else None
    result.clauses = [Clause("<= 30 s", worst, worst is not None and worst <= 30)]
    return result
