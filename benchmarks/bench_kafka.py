"""Row 1: producer throughput on the user's path, `cryptolab produce --source replay --tape
<tape> --speed max` (the CLI in a subprocess against the running local broker), against a
producer that flushes after every message.

Side by side in the same rounds, in this process on the same tape: the frame-by-frame path
every generator took before `publish_all` batched them (``before``) and the batched path the
CLI now takes (``after``). Every run publishes to a fresh topic, and the row fails unless each
topic then holds exactly one message per trade sent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaProducer

from benchmarks.common import Baseline, Clause, Result, spread
from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.feeds.source import replay_source
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import read_frames, write_frames
from cryptolab.frames import event_time_of
from cryptolab.settings import Settings, load_settings

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
BASELINE_FRAMES = 3_000


def _fresh_topic(bootstrap: str) -> Settings:
    settings = load_settings(topic=f"bench_{uuid.uuid4().hex[:10]}", dlq_topic="bench_dlq")
    ensure_topics(settings, bootstrap)
    return settings


def _stored(bootstrap: str, topic: str) -> int:
    return sum(end_offsets(bootstrap, topic).values())


def baseline_send(bootstrap: str, topic: str, frames: list[str]) -> float:
    """The original producer: json per message, send, flush after every message."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, value_serializer=lambda v: json.dumps(v).encode()
    )
    producer.partitions_for(topic)  # connected before timing
    started = time.perf_counter()
    for frame in frames:
        data = json.loads(frame)["data"]
        producer.send(
            topic, {"symbol": data["s"], "price": float(data["p"]), "trade_time": data["T"]}
        )
        producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


def cli_produce(bootstrap: str, topic: str, tape: Path, data_dir: Path) -> tuple[float, float]:
    """Wall seconds of `cryptolab produce ... --speed max` and the seconds it reports itself
    (without interpreter start and imports)."""
    env = os.environ | {
        "CRYPTOLAB_KAFKA_BOOTSTRAP": bootstrap,
        "CRYPTOLAB_TOPIC": topic,
        "CRYPTOLAB_DLQ_TOPIC": "bench_dlq",
    }
    cmd = [sys.executable, "-m", "cryptolab", "--data-dir", str(data_dir), "produce"]
    cmd += ["--source", "replay", "--tape", str(tape), "--speed", "max"]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=600)
    wall = time.perf_counter() - started
    match = re.search(r"published frames=\d+ trades=\d+ dlq=\d+ in ([0-9.]+) s", done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"cryptolab produce failed ({done.returncode}): {done.stderr[-1500:]}")
    return wall, float(match.group(1))


def in_process(bootstrap: str, topic: str, tape: Path, batched: bool) -> float:
    """Seconds to publish the tape in this process, connected before timing: ``batched`` is
    what `cryptolab produce` runs now; otherwise what it ran before `publish_all` batched
    generators (each frame published alone, and the replay parsed each frame's event time)."""
    producer = TradeProducer(load_settings(topic=topic, dlq_topic="bench_dlq"), bootstrap)
    producer.client.partitions_for(topic)
    started = time.perf_counter()
    if batched:
        source = replay_source(tape, None)
        producer.publish_all(source.frames(threading.Event()), bulk=not source.paced)
    else:
        for frame in read_frames(tape):
            event_time_of(frame)  # tape.replay(frames, speed=None) did this for every frame
            producer.publish(frame)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


def producer_throughput(bootstrap: str, repeats: int = 3, seconds: int = 400) -> Result:
    frames = list(synth_frames(SYMBOLS, seconds, 100, seed=3))
    n = len(frames)
    cli_wall: list[float] = []
    cli_own: list[float] = []
    before: list[float] = []
    after: list[float] = []
    base: list[float] = []
    short: list[str] = []  # topics that do not hold every message sent
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        tape = Path(tmp) / "tape.jsonl.gz"
        write_frames(tape, frames)

        def checked(sent: int, run: Callable[[str], None]) -> None:
            topic = _fresh_topic(bootstrap).topic
            run(topic)
            if (stored := _stored(bootstrap, topic)) != sent:
                short.append(f"{topic}: {stored:,} of {sent:,}")

        def cli(topic: str) -> None:
            wall, own = cli_produce(bootstrap, topic, tape, Path(tmp) / "cli")
            cli_wall.append(n / wall)
            cli_own.append(n / own)

        steps: list[Callable[[], None]] = [
            lambda: checked(n, cli),
            lambda: checked(
                BASELINE_FRAMES,
                lambda t: base.append(
                    BASELINE_FRAMES / baseline_send(bootstrap, t, frames[:BASELINE_FRAMES])
                ),
            ),
            lambda: checked(n, lambda t: before.append(n / in_process(bootstrap, t, tape, False))),
            lambda: checked(n, lambda t: after.append(n / in_process(bootstrap, t, tape, True))),
        ]
        for round_ in range(repeats):
            for step in steps[round_ % 4 :] + steps[: round_ % 4]:
                step()
    result = Result(
        1,
        "producer throughput, `cryptolab produce --source replay --speed max` -> local Kafka",
        "msg/s",
        [round(v) for v in cli_wall],
        ">= 30x baseline and >= 20,000 msg/s",
        [],
        [
            Baseline(
                "flush per message",
                [round(v) for v in base],
                "json + flush() after every "
                f"send, {BASELINE_FRAMES:,} frames of the same tape, in this process",
            )
        ],
        notes=f"a {n:,}-frame gzip tape (3 symbols), the CLI in a subprocess: parse + validate + "
        "JSON + acks=all, idempotent; msg/s = frames / the command's wall time (interpreter "
        "start and imports included). Every topic is checked afterwards to hold one message "
        "per trade sent.",
        extra={
            "cli_own_time_msg_per_s": spread([round(v) for v in cli_own]),
            "in_process_before_msg_per_s": spread([round(v) for v in before]),
            "in_process_after_msg_per_s": spread([round(v) for v in after]),
            "after_vs_before": round(spread(after)["median"] / spread(before)["median"], 2),
        },
        error=f"topics missing messages: {', '.join(short)}" if short else None,
    )
    ratio = result.ratio(result.baselines[0]) or 0.0
    ours = spread(result.ours)["median"]
    result.clauses = [
        Clause(">= 30x baseline", round(ratio, 2), ratio >= 30),
        Clause(">= 20,000 msg/s", ours, ours >= 20_000),
    ]
    return result
