"""What the pipeline reports to the dashboard: Spark rates and the background Kafka-lag probe."""

from __future__ import annotations

import threading
import time

from cryptolab.stack import _LagProbe, spark_rates


def test_spark_rates_from_streaming_query_progress() -> None:
    progress = {
        "trades": {
            "inputRowsPerSecond": 41.5,
            "processedRowsPerSecond": 812.25,
            "durationMs": {"triggerExecution": 230, "addBatch": 180},
        },
        "candles": {"inputRowsPerSecond": None, "durationMs": {}},
        "idle": {},  # no batch yet
    }
    assert spark_rates(progress) == {
        "trades": {"input_rps": 41.5, "processed_rps": 812.25, "batch_ms": 230.0},
        "candles": {"input_rps": 0.0, "processed_rps": 0.0, "batch_ms": 0.0},
    }


def test_lag_probe_never_blocks_the_reader_and_measures_at_most_every_period() -> None:
    release = threading.Event()
    calls: list[float] = []

    def slow_measure() -> int:
        calls.append(time.monotonic())
        release.wait(5)
        return 42

    probe = _LagProbe(slow_measure, every_s=0.3)
    started = time.monotonic()
    assert probe.get() is None  # the first reading starts a measurement, returns at once
    assert probe.get() is None and len(calls) <= 1  # one measurement at a time
    assert time.monotonic() - started < 0.5
    release.set()
    deadline = time.monotonic() + 5
    while probe.get() != 42 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert probe.get() == 42
    assert len(calls) == 1  # not again before every_s has passed
    time.sleep(0.35)
    probe.get()
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 2


def test_lag_probe_reports_nothing_when_kafka_cannot_be_asked() -> None:
    def broken() -> int:
        raise OSError("no broker")

    probe = _LagProbe(broken, every_s=0.01)
    probe.get()
    deadline = time.monotonic() + 5
    while probe._busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert probe.get() is None
