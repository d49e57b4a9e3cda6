"""What the streaming rows (3, 4, 5, 8) share: settings, the job configurations compared, a
running job on a fresh topic, and a publisher paced at a given rate."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import ensure_topics
from cryptolab.feeds.source import Source
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import replay
from cryptolab.settings import Settings, load_settings
from cryptolab.store import Store, open_store
from cryptolab.streaming.job import StreamingJob
from cryptolab.streaming.session import create_spark

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
RATE = 46.0  # BTCUSDT's average trades/s


@dataclass(frozen=True)
class Config:
    """A streaming job configuration compared in rows 4 and 5."""

    name: str
    overrides: dict[str, Any]
    note: str


OURS = Config("ours", {}, "the defaults: 1 s trigger, 2 shuffle partitions")
TRIGGER_ONLY = Config(
    "10 s trigger alone",
    {"trigger_seconds": 10.0},
    "the defaults with the seed's 10 s trigger; everything else ours (2 shuffle partitions)",
)
SEED = Config(
    "seed: 10 s trigger + 200 shuffle partitions",
    {"trigger_seconds": 10.0, "shuffle_partitions": 200},
    "the original job's settings (Spark's default 200 shuffle partitions)",
)
CONFIGS = (OURS, TRIGGER_ONLY, SEED)


def bench_settings(tmp: str | Path, bootstrap: str, **overrides: Any) -> Settings:
    return load_settings(
        data_dir=Path(tmp),
        kafka_bootstrap=bootstrap,
        topic=f"bench_{uuid.uuid4().hex[:10]}",
        reconcile_every_seconds=0,
        **overrides,
    )


def live_source(
    seconds: float,
    speed: float,
    frames_out: list[dict[str, Any]],
    ready: Callable[[], bool] | None = None,
) -> Source:
    """Synthetic trades stamped from the moment the feed starts, paced in real time x speed.
    ``ready``: the feed starts only once it returns True (or after 60 s)."""

    def frames(stop: threading.Event) -> Iterator[str]:
        deadline = time.monotonic() + 60
        while ready is not None and not ready() and time.monotonic() < deadline:
            if stop.wait(0.1):
                return
        start_ms = int(time.time() * 1000) + 200
        rate = RATE * speed
        for frame in replay(synth_frames(SYMBOLS, seconds / speed, rate, 5, start_ms), 1.0):
            frames_out.append(orjson.loads(frame)["data"])
            yield frame

    return Source("replay", "benchmark feed", frames, finite=True)


@contextmanager
def running_job(
    bootstrap: str, start: bool = True, **overrides: Any
) -> Iterator[tuple[StreamingJob, Store, Settings]]:
    """A streaming job (Spark in this process, kept between jobs) over a fresh topic, writing
    to a fresh chDB store (started unless ``start`` is False); stopped on exit."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        settings = bench_settings(tmp, bootstrap, **overrides)
        ensure_topics(settings, bootstrap)
        spark = create_spark(settings)
        spark.conf.set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        store = open_store(settings)
        job = StreamingJob(spark, settings, bootstrap, store)
        if start:
            job.start()
        try:
            yield job, store, settings
        finally:
            job.stop()
            store.close()


def publish_paced(
    producer: TradeProducer,
    frames: list[str],
    rate: float,
    every_2s: Callable[[], None] | None = None,
) -> None:
    """Publish ``frames`` at ``rate`` per second (what is due every 50 ms, as one batch),
    calling ``every_2s`` every 2 s; flushed at the end."""
    sent, started = 0, time.monotonic()
    next_call = started + 2
    while sent < len(frames):
        due = min(len(frames), int((time.monotonic() - started) * rate))
        if due > sent:
            producer.publish_batch(frames[sent:due])
            sent = due
        if every_2s is not None and time.monotonic() >= next_call:
            every_2s()
            next_call += 2
        time.sleep(0.05)
    producer.flush()


def paced_frames(rate: float, seconds: float, seed: int, start_ms: int | None = None) -> list[str]:
    """``rate`` trades/s in total over :data:`SYMBOLS` for ``seconds``, from ``start_ms``
    (default: now, so that trades published one phase after another keep moving forward)."""
    start = int(time.time() * 1000) if start_ms is None else start_ms
    return list(synth_frames(SYMBOLS, seconds, rate / len(SYMBOLS), seed, start))
