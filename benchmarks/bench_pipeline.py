"""Measures 4 (freshness), 5 (drain capacity), 8 (peak RSS at 10x) and 9 (cold start): the
whole embedded stack (real Kafka, Spark, chDB) in this process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil

from benchmarks.common import Result, median, percentile
from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.feeds.source import Source
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import replay
from cryptolab.settings import Settings, load_settings
from cryptolab.stack import Stack
from cryptolab.store import open_store
from cryptolab.streaming.job import StreamingJob
from cryptolab.streaming.session import create_spark

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
RATE = 46.0  # BTCUSDT's average trades/s
PACED_RATE = 5_000  # trades/s published during the paced run of row 5
ORIGINAL = {"trigger_seconds": 10.0, "shuffle_partitions": 200}  # the seed's untuned job


def _settings(tmp: str, bootstrap: str, **overrides: Any) -> Settings:
    return load_settings(
        data_dir=Path(tmp),
        kafka_bootstrap=bootstrap,
        topic=f"bench_{uuid.uuid4().hex[:8]}",
        reconcile_every_seconds=0,
        **overrides,
    )


def _live_source(seconds: float, speed: float, frames_out: list[dict[str, Any]]) -> Source:
    """Synthetic trades stamped from the moment the feed starts, paced in real time x speed."""

    def frames(stop: threading.Event) -> Iterator[str]:
        start_ms = int(time.time() * 1000) + 200
        rate = RATE * speed
        for frame in replay(synth_frames(SYMBOLS, seconds / speed, rate, 5, start_ms), 1.0):
            frames_out.append(orjson.loads(frame)["data"])
            yield frame

    return Source("replay", "benchmark feed", frames, finite=True)


def freshness_run(bootstrap: str, seconds: float, **overrides: Any) -> list[float]:
    """Latency (s) from each trade's trade_time until a candle including it is queryable."""
    sent: list[dict[str, Any]] = []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        stack = Stack(_settings(tmp, bootstrap, **overrides), _live_source(seconds, 1.0, sent))
        stack.start(dash=False)
        seen: dict[tuple[str, int], int] = {}
        try:
            while not stack.status.feed_done or len(latencies) < len(sent) * 0.9:
                _poll_candles(stack, sent, seen, latencies)
                time.sleep(0.05)
                if stack.status.feed_done and time.time() - sent[-1]["T"] / 1000 > 30:
                    break
        finally:
            stack.stop()
    return latencies[len(latencies) // 10 :]  # drop the warm-up tenth


def _poll_candles(
    stack: Stack,
    sent: list[dict[str, Any]],
    seen: dict[tuple[str, int], int],
    latencies: list[float],
) -> None:
    assert stack.store is not None
    now = time.time()
    rows = stack.store.query_rows(
        f"SELECT symbol, toUnixTimestamp64Milli(window_start), trades "  # noqa: S608
        f"FROM {stack.store.table('candles_10s')} FINAL"
    )
    by_window: dict[tuple[str, int], list[int]] = {}
    for trade in list(sent):
        by_window.setdefault((trade["s"], trade["T"] // 10_000 * 10_000), []).append(trade["T"])
    for symbol, window, count in rows:
        key = (str(symbol), int(window))
        times = by_window.get(key, [])
        for index in range(seen.get(key, 0), min(int(count), len(times))):
            latencies.append(now - times[index] / 1000)
        seen[key] = max(seen.get(key, 0), int(count))


def freshness(bootstrap: str, seconds: float = 60) -> Result:
    ours = freshness_run(bootstrap, seconds)
    base = freshness_run(bootstrap, seconds, **ORIGINAL)
    p50, p99, b50 = median(ours), percentile(ours, 99), median(base)
    return Result(
        4,
        "freshness: trade_time -> candle queryable",
        "s p50",
        round(p50, 3),
        round(b50, 3),
        "p50 <= 1.5 s, p99 <= 3 s, >= 5x lower p50 than baseline",
        p50 <= 1.5 and p99 <= 3 and b50 / p50 >= 5,
        notes=f"3 symbols x {RATE:g} trades/s, {seconds:g} s, polled every 50 ms; "
        "baseline: 10 s trigger, 200 shuffle partitions (Spark defaults, as the seed)",
        extra={
            "p99_s": round(p99, 3),
            "baseline_p99_s": round(percentile(base, 99), 3),
            "samples": len(ours),
        },
    )


def drain_rate(bootstrap: str, trades: int, **overrides: Any) -> float:
    """Trades/s the streaming job processes from a backlog already in Kafka."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        settings = _settings(tmp, bootstrap, **overrides)
        ensure_topics(settings, bootstrap)
        producer = TradeProducer(settings, bootstrap)
        seconds = trades / (RATE * 100 * len(SYMBOLS))
        producer.publish_all(synth_frames(SYMBOLS, seconds, RATE * 100, seed=9))
        producer.flush()
        producer.close()
        target = end_offsets(bootstrap, settings.topic)
        spark = create_spark(settings)
        spark.conf.set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        store = open_store(settings)
        started = time.perf_counter()
        job = StreamingJob(spark, settings, bootstrap, store).start()
        try:
            while not job.caught_up(target):
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
        finally:
            job.stop()
            store.close()
        return sum(target.values()) / elapsed


def paced_lag(bootstrap: str, rate: float, seconds: float, **overrides: Any) -> dict[str, Any]:
    """Publish synthetic trades at ``rate``/s for ``seconds`` into the running job; sample the
    consumer lag (topic end offsets minus what the slower query has committed) every 2 s."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        settings = _settings(tmp, bootstrap, **overrides)
        ensure_topics(settings, bootstrap)
        frames = list(synth_frames(SYMBOLS, seconds, rate / len(SYMBOLS), seed=11))
        spark: Any = create_spark(settings)
        spark.conf.set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        store = open_store(settings)
        job = StreamingJob(spark, settings, bootstrap, store).start()
        producer = TradeProducer(settings, bootstrap)
        lags: list[int] = []  # one sample every 2 s
        try:
            sent, started = 0, time.monotonic()
            next_sample = started + 2
            while sent < len(frames):
                due = min(len(frames), int((time.monotonic() - started) * rate))
                if due > sent:
                    producer.publish_batch(frames[sent:due])
                    sent = due
                if time.monotonic() >= next_sample:
                    lags.append(_lag(job, bootstrap, settings.topic))
                    next_sample += 2
                time.sleep(0.05)
            producer.flush()
            lags.append(_lag(job, bootstrap, settings.topic))
        finally:
            producer.close()
            job.stop()
            store.close()
    return {
        "paced_rate_per_s": round(rate),
        "paced_seconds": round(len(frames) / rate),
        "paced_max_lag_messages": max(lags),
        "paced_max_lag_after_10s_messages": max(lags[5:], default=lags[-1]),
        "paced_last_lag_messages": lags[-1],
    }


def _lag(job: StreamingJob, bootstrap: str, topic: str) -> int:
    job.raise_if_failed()
    end = end_offsets(bootstrap, topic)
    done = job.processed().values()
    return sum(max(0, o - min((d.get(p, 0) for d in done), default=0)) for p, o in end.items())


def capacity(bootstrap: str, trades: int = 200_000) -> Result:
    """Both jobs drain the same backlog, both in a JIT-warm JVM: the first drain of a fresh
    process runs ~2x slower (compilation), and a small backlog flatters the job whose cost is
    per batch (200 shuffle partitions: ~15 s of state-store tasks per batch here)."""
    cold = drain_rate(bootstrap, trades // 4)  # warm-up, reported but not compared
    ours = drain_rate(bootstrap, trades)
    base = drain_rate(bootstrap, trades, **ORIGINAL)
    paced_seconds = float(os.environ.get("CRYPTOLAB_BENCH_PACED_S", 60))
    paced = paced_lag(bootstrap, PACED_RATE, paced_seconds)
    paced_base = paced_lag(bootstrap, PACED_RATE, paced_seconds, **ORIGINAL)
    return Result(
        5,
        "pipeline capacity: Kafka backlog -> trades + candles stored",
        "trades/s",
        round(ours),
        round(base),
        ">= 10x baseline and >= 5,000 trades/s",
        ours / base >= 10 and ours >= 5000,
        notes=f"drain of a {trades:,}-trade backlog by each job, after a {trades // 4:,}-trade "
        f"warm-up drain; then each job paced at {PACED_RATE:,} trades/s for "
        f"{paced['paced_seconds']} s, lag sampled every 2 s (CRYPTOLAB_BENCH_PACED_S=600: 10 min)",
        extra={
            "cold_first_drain_trades_per_s": round(cold),
            **paced,
            **{f"baseline_{k}": v for k, v in paced_base.items() if "lag" in k},
        },
    )


def peak_rss(bootstrap: str | None, seconds: float = 60) -> Result:
    """Whole embedded stack (this process, Spark JVM, local broker) at 10x a Binance-like rate."""
    sent: list[dict[str, Any]] = []
    peak = 0
    lag_samples: list[int] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        settings = load_settings(data_dir=Path(tmp), reconcile_every_seconds=0)
        stack = Stack(settings, _live_source(seconds * 10, 10.0, sent)).start(dash=True)
        me = psutil.Process()
        try:
            deadline = time.monotonic() + seconds + 30
            while not stack.status.feed_done and time.monotonic() < deadline:
                procs = [me, *me.children(recursive=True)]
                if stack.broker is not None and stack.broker.status().pid:
                    procs.append(psutil.Process(stack.broker.status().pid))
                peak = max(peak, sum(_rss(p) for p in {p.pid: p for p in procs}.values()))
                assert stack.job is not None
                lag_samples.append(stack.kafka_lag())
                time.sleep(1.0)
        finally:
            stack.stop()
    gb = peak / 1e9
    return Result(
        8,
        "peak RSS of the whole embedded stack at 10x replay",
        "GB",
        round(gb, 2),
        None,
        "<= 3 GB",
        gb <= 3,
        notes=f"{len(sent):,} trades in {seconds:g} s (10x {len(SYMBOLS)} x {RATE:g}/s), "
        "Python + Spark JVM + Kafka JVM + chDB + Dash; sampled every 1 s",
        extra={
            "max_lag_messages": max(lag_samples, default=0),
            "last_lag_messages": lag_samples[-1] if lag_samples else None,
        },
    )


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def cold_start() -> Result:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cryptolab",
                "--data-dir",
                tmp,
                "up",
                "--source",
                "replay",
                "--speed",
                "1",
                "--no-dash",
                "--seconds",
                "35",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        wall = time.perf_counter() - started
    match = re.search(r"first candle queryable ([0-9.]+) s after start", done.stderr)
    value = float(match.group(1)) if match else float("nan")
    return Result(
        9,
        "`cryptolab up` cold start to first candle (jars cached)",
        "s",
        round(value, 1),
        None,
        "<= 30 s",
        value <= 30,
        notes=f"includes starting the local Kafka broker and Spark; exit {done.returncode},"
        f" whole 35 s run incl. drain and shutdown {wall:.0f} s",
    )
