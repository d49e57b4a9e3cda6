"""One scale point's measured process: the whole embedded stack (`cryptolab up`'s Stack: local
Kafka broker, producer, Spark, chDB, dashboard) replaying a whole-market tape in real time.

Started by :mod:`benchmarks.bench_scale`, which samples this process tree from outside. Here:

- the replay records the wall time of its first frame, so each trade's *virtual* trade time is
  ``t0 + (T - E0)`` (the pacer emits a frame at ``t0 + (E - E0)``; T is a few ms before E);
- a poller thread asks the store every ``--poll`` seconds for the 10 s candles updated since its
  last poll (``max(trades)`` per symbol and window) and writes one line per candle whose trade
  count grew: ``[seen_ms, symbol, window_ms, trades]``;
- at the end: published trades, distinct trades stored (FINAL), and the store's physical rows
  and bytes per table (``system.parts``).

    python -m benchmarks.scale_stack --tape T --data-dir D --info I --observations O
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptolab.bus.broker import free_port
from cryptolab.feeds.source import Source
from cryptolab.feeds.tapes.tape import read_frames, replay
from cryptolab.frames import event_time_of
from cryptolab.settings import load_settings
from cryptolab.stack import Stack
from cryptolab.store.schema import CANDLES_10S, TRADES

log = logging.getLogger("benchmarks.scale_stack")

UPDATE_MARGIN_MS = 5_000
"""Each poll re-reads the candles updated in the last 5 s before the newest it saw (writes of
one micro-batch share an ``updated_at`` but may land in more than one insert)."""


class Clock:
    """The replay's origin: wall time of the first frame and its event time."""

    def __init__(self) -> None:
        self.t0_ms: int | None = None
        self.e0_ms: int | None = None
        self.ready = threading.Event()

    def tape_now_ms(self) -> int | None:
        if self.t0_ms is None or self.e0_ms is None:
            return None
        return self.e0_ms + int(time.time() * 1000) - self.t0_ms


def paced_source(tape: Path, clock: Clock) -> Source:
    def frames(stop: threading.Event) -> Iterator[str]:
        for frame in replay(read_frames(tape), 1.0):
            if clock.t0_ms is None:
                clock.e0_ms, clock.t0_ms = event_time_of(frame), int(time.time() * 1000)
                clock.ready.set()
            yield frame

    return Source("replay", f"scale replay of {tape.name}", frames, finite=True)


def poll(stack: Stack, clock: Clock, out: Path, every: float, stop: threading.Event) -> None:
    """Record each candle's trade count whenever it grows: every ``every`` seconds, the candle
    rows written since the last poll (by ``updated_at``, with a margin), as a dashboard would
    read them (no FINAL: the largest count of each window)."""
    assert stack.store is not None
    store = stack.store
    sql = (
        f"SELECT symbol, toUnixTimestamp64Milli(window_start) AS w, max(trades), "  # noqa: S608
        f"max(toUnixTimestamp64Milli(updated_at)) FROM {store.table(CANDLES_10S)} "
        "WHERE updated_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC') GROUP BY symbol, w"
    )
    counts: dict[tuple[str, int], int] = {}
    newest = 0
    clock.ready.wait()
    with out.open("w") as handle:
        while not stop.is_set():
            started = time.monotonic()
            rows = store.query_rows(sql, {"since": newest - UPDATE_MARGIN_MS})
            seen = int(time.time() * 1000)
            for symbol, window, trades, updated in rows:
                key = (str(symbol), int(window))
                newest = max(newest, int(updated))
                if int(trades) > counts.get(key, 0):
                    counts[key] = int(trades)
                    handle.write(json.dumps([seen, key[0], key[1], int(trades)]) + "\n")
            handle.flush()
            stop.wait(max(0.0, every - (time.monotonic() - started)))


def store_summary(stack: Stack) -> dict[str, Any]:
    assert stack.store is not None
    store = stack.store
    distinct = store.query_rows(f"SELECT count() FROM {store.table(TRADES)} FINAL")[0][0]  # noqa: S608
    parts = store.query_rows(
        "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts "
        "WHERE database = {db:String} AND active GROUP BY table",
        {"db": store.database},
    )
    return {
        "trades_stored_distinct": int(distinct),
        "tables": {str(t): {"rows": int(r), "bytes": int(b)} for t, r, b in parts},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tape", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--info", type=Path, required=True, help="JSON written once started")
    parser.add_argument("--observations", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--poll", type=float, default=0.25)
    parser.add_argument("--spark-master", default=None)
    parser.add_argument(
        "--job", choices=("one-query", "two-queries"), default="one-query",
        help="two-queries: the streaming job of before issue 17 (benchmarks/old_job.py)",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = load_settings(
        data_dir=args.data_dir, spark_master=args.spark_master, dash_port=free_port()
    )
    if args.job == "two-queries":
        import cryptolab.stack
        from benchmarks.old_job import TwoQueryJob

        cryptolab.stack.StreamingJob = TwoQueryJob  # type: ignore[misc]
    clock = Clock()
    stack = Stack(settings, paced_source(args.tape, clock))
    stop = threading.Event()
    try:
        stack.start(dash=True)
        info = {
            "bootstrap": stack.status.bootstrap,
            "topic": settings.topic,
            "checkpoints": str(settings.checkpoint_dir),
            "dashboard": stack.dashboard.url if stack.dashboard is not None else None,
        }
        poller = threading.Thread(
            target=poll, args=(stack, clock, args.observations, args.poll, stop), daemon=True
        )
        poller.start()
        clock.ready.wait(timeout=120)
        args.info.write_text(json.dumps({**info, "t0_ms": clock.t0_ms, "e0_ms": clock.e0_ms}))
        stack.run(until_drained=True)
        stop.set()
        poller.join(timeout=30)
        assert stack.producer is not None
        result = {
            "published": stack.producer.stats.trades,
            "dlq": stack.producer.stats.dlq,
            "drained_at_ms": int(time.time() * 1000),
            **store_summary(stack),
        }
        args.result.write_text(json.dumps(result))
    finally:
        stop.set()
        stack.stop()


if __name__ == "__main__":
    main()
