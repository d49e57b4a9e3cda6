"""Kafka broker SIGKILLed mid-stream and restarted: the producer buffers and retries
(idempotent, acks=all), Spark's Kafka source reconnects, the store ends up exact: every trade
of the tape in Kafka once and stored once, streamed candles (no reconcile) equal to the
reference.

Spark reads at most 1,500 records per micro-batch, so that it still has work when the broker
dies even if (on a loaded machine) the whole tape reached Kafka before its first batch."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from cryptolab.bus.broker import LocalBroker
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from cryptolab.settings import load_settings
from tests.reliability.pipeline import (
    commits,
    committed_offset,
    in_kafka,
    pipeline_env,
    replay,
    stream_settings,
    up,
    verify_store,
    wait_until,
)
from tests.reliability.results import record

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
DOWN_S = 8.0


@pytest.mark.row("fault", "Kafka broker SIGKILL + restart")
def test_broker_sigkill_and_restart_loses_and_doubles_nothing(tmp_path: Path) -> None:
    tape = tmp_path / "tape.jsonl.gz"
    write_frames(tape, synth_frames(SYMBOLS, 120, 30, seed=91, jitter_ms=500))
    broker_settings = load_settings(data_dir=tmp_path / "broker")
    broker = LocalBroker(broker_settings)
    bootstrap = broker.start()
    data = tmp_path / "data"
    env = pipeline_env(data, CRYPTOLAB_KAFKA_BOOTSTRAP=bootstrap,
                       CRYPTOLAB_MAX_OFFSETS_PER_TRIGGER="1500")  # fmt: skip
    run = up(replay(tape, "6"), env, tmp_path / "up.log")
    try:
        wait_until("trades in Kafka and in the store",
                   lambda: in_kafka(env) > 2000 and len(commits(data)) >= 1,
                   timeout=420, run=run)  # fmt: skip
        before = in_kafka(env)
        assert broker._proc is not None
        os.kill(broker._proc.pid, signal.SIGKILL)
        broker._proc.wait(timeout=30)
        killed_at = time.monotonic()
        committed_at_kill = committed_offset(data)
        time.sleep(DOWN_S)
        restarted = LocalBroker(broker_settings)
        assert restarted.start() == bootstrap, "the broker comes back on the same port"
        back_at = time.monotonic()
        committed = len(commits(data))
        recovered_at = wait_until(
            "a micro-batch committed after the restart",
            lambda: len(commits(data)) > committed,
            timeout=180,
            run=run,
        )
        rc = run.wait()
        assert rc == 0, run.output()[-3000:]
        counts = verify_store(env, tape, SYMBOLS)  # includes: the tape in Kafka exactly once
        restarted.stop()
    finally:
        if run.alive():
            run.kill()
        LocalBroker(broker_settings).stop()
    assert committed_at_kill < counts["trades_in"], "the stream had finished before the kill"
    record(
        "fault",
        "Kafka broker SIGKILL + restart",
        injected=f"SIGKILL of the broker JVM with {before:,} of {counts['trades_in']:,} trades in "
        f"Kafka; down {back_at - killed_at:.0f} s (restart included); same log dir and port",
        **stream_settings(env),
        **counts,
        in_kafka_at_kill=before,
        committed_at_kill=committed_at_kill,
        recover_seconds=round(recovered_at - killed_at, 1),
    )
