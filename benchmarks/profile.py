"""Profiles behind reports/profiles/ (pyinstrument, text), one stage at a time.

    .venv/bin/python -m benchmarks.profile parse       # row 2: batch vs one-by-one parsing
    .venv/bin/python -m benchmarks.profile producer    # row 1: publish_all to a local broker
    .venv/bin/python -m benchmarks.profile dashboard   # row 6: 60 live ticks and 60 redraws

Prints the profile; pyinstrument must be installed (``pip install pyinstrument``). Numbers depend
on what else runs on the machine: read the proportions.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.settings import load_settings


def _profiled(label: str, fn: Any, interval: float = 0.0002) -> None:
    from pyinstrument import Profiler

    profiler = Profiler(interval=interval)
    profiler.start()
    fn()
    profiler.stop()
    print(f"==== {label} ====")
    print(profiler.output_text(unicode=False, color=False, show_all=True))


def parse() -> None:
    from cryptolab.bus.producer import BATCH_FRAMES
    from cryptolab.model import now_us, parse_frame, parse_frames

    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 120, 50, seed=1))

    clock = now_us()  # the producer's clock: after every trade time of the tape

    def batches() -> None:
        for _ in range(40):
            for start in range(0, len(frames), BATCH_FRAMES):
                parse_frames(frames[start : start + BATCH_FRAMES], clock)

    def one_by_one() -> None:
        for _ in range(40):
            for frame in frames:
                parse_frame(frame, clock)

    _profiled(f"parse_frames, 40 x {len(frames)} frames in batches", batches, 0.0001)
    _profiled(f"parse_frame, 40 x {len(frames)} frames one by one", one_by_one, 0.0001)


def producer() -> None:
    from cryptolab.bus.broker import LocalBroker
    from cryptolab.bus.producer import TradeProducer
    from cryptolab.bus.topics import ensure_topics

    frames = list(synth_frames(["BTCUSDT", "ETHUSDT", "BNBUSDT"], 100, 100, seed=3))
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        broker = LocalBroker(load_settings(data_dir=Path(tmp)))
        bootstrap = broker.start()
        try:
            settings = load_settings(topic=f"profile_{uuid.uuid4().hex[:8]}", dlq_topic="dlq")
            ensure_topics(settings, bootstrap)
            sender = TradeProducer(settings, bootstrap)
            sender.publish(frames[0])
            sender.flush()

            def publish() -> None:
                sender.publish_all(frames[1:])
                sender.flush()

            _profiled(f"publish_all of {len(frames) - 1:,} frames, acks=all", publish)
            sender.close()
        finally:
            broker.stop()


def dashboard() -> None:
    import numpy as np

    from benchmarks import candlegen
    from benchmarks.dashboard_latency import Market, apply_state, call, chart_request
    from cryptolab.dashboard.app import create_app
    from cryptolab.store import open_store
    from cryptolab.store.schema import CANDLES_10S

    with tempfile.TemporaryDirectory(prefix="cryptolab-profile-") as tmp:
        settings = load_settings(data_dir=tmp)
        store = open_store(settings)
        candlegen.fill(store, ["BTCUSDT", "ETHUSDT", "BNBUSDT"], 30, datetime.now(UTC))
        store.command(f"OPTIMIZE TABLE {store.table(CANDLES_10S)} FINAL")
        client = create_app(store, settings).server.test_client()
        market = Market(store, "BTCUSDT", np.random.default_rng(11))
        first = call(client, chart_request("BTCUSDT", "1h", None, "range.value"))[2]
        state = first["response"]["view"]["data"]

        from pyinstrument import Profiler

        for label, live in (("60 live ticks (Patch)", True), ("60 full redraws", False)):
            profiler = Profiler(interval=0.0002)
            for i in range(60):
                market.tick(opens_new=i % 10 == 9)  # the store changes; not profiled
                if live:
                    body = chart_request("BTCUSDT", "1h", state, "tick.n_intervals")
                else:
                    body = chart_request("BTCUSDT", "1h", None, "range.value")
                profiler.start()
                answer = call(client, body)[2]
                profiler.stop()
                if live:
                    state = apply_state(state, answer["response"]["view"]["data"])
            print(f"==== {label}, 1 h of 10 s candles, 30 days x 3 symbols ====")
            print(profiler.output_text(unicode=False, color=False))
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=["parse", "producer", "dashboard"])
    stage = parser.parse_args().stage
    {"parse": parse, "producer": producer, "dashboard": dashboard}[stage]()


if __name__ == "__main__":
    main()
