"""Broker + paced live feed for the real-time-mode experiment (runs in the project venv).

    .venv/bin/python -m benchmarks.realtime_mode.rtm_feed SECONDS

See reports/profiles/realtime_mode.md; the Spark side is rtm_spark.py (a scratch venv with
pyspark 4.3). The two meet through files in /tmp (the bootstrap address, a ready flag).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from cryptolab.bus.broker import LocalBroker
from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import ensure_topics
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import replay
from cryptolab.settings import load_settings

BOOTSTRAP_FILE = Path("/tmp/rtm_bootstrap")
READY_FILE = Path("/tmp/rtm_ready")


def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        broker = LocalBroker(load_settings(data_dir=Path(tmp)))
        bootstrap = broker.start()
        settings = load_settings(topic="rtm_trades", dlq_topic="rtm_dlq")
        ensure_topics(settings, bootstrap)
        BOOTSTRAP_FILE.write_text(bootstrap)
        print("bootstrap", bootstrap, flush=True)
        while not READY_FILE.exists():
            time.sleep(0.5)
        producer = TradeProducer(settings, bootstrap)
        start_ms = int(time.time() * 1000) + 200
        frames = synth_frames(["BTCUSDT", "ETHUSDT", "BNBUSDT"], seconds, 46.0, 5, start_ms)
        for frame in replay(frames, 1.0):
            producer.publish(frame)
        producer.flush()
        producer.close()
        print("feed done", flush=True)
        time.sleep(15)
        broker.stop()


if __name__ == "__main__":
    main(float(sys.argv[1]))
