"""The Spark driver (`cryptolab up`, which hosts it) SIGKILLed mid-stream and restarted from its
checkpoint. No reconcile help: checkpoint recovery + idempotent sinks + in-stream dedup alone
must leave the store exact, though the restarted replay publishes every trade again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.reliability.pipeline import (
    Up,
    commits,
    pipeline_env,
    replay,
    verify_store,
    wait_until,
)
from tests.reliability.results import record

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.mark.row("fault", "Spark driver SIGKILL + restart from checkpoint")
def test_driver_sigkill_then_restart_from_checkpoint_converges(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    tape = tmp_path / "t.jsonl"
    write_frames(tape, synth_frames(SYMBOLS, 240, 20, seed=42, jitter_ms=1000))
    data = tmp_path / "data"
    env = pipeline_env(
        data,
        CRYPTOLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CRYPTOLAB_RECONCILE_EVERY_SECONDS="0",
        CRYPTOLAB_TRIGGER_SECONDS="0.5",
    )
    first = Up.start(replay(tape, "8"), env, tmp_path / "first.log")
    wait_until("6 committed candle batches", lambda: len(commits(data, "candles")) >= 6, 180, first)
    first.kill()
    killed_at = time.monotonic()
    before = len(commits(data, "trades"))  # counted after the kill: later ones are the restart's
    second = Up.start(replay(tape, "max"), env, tmp_path / "second.log")
    recovered_at = wait_until(
        "a batch committed by the restarted driver",
        lambda: len(commits(data, "trades")) > before,
        240,
        second,
    )
    assert second.wait() == 0, second.output()[-3000:]
    counts = verify_store(env, tape, SYMBOLS)
    record(
        "fault",
        "Spark driver SIGKILL + restart from checkpoint",
        injected=f"SIGKILL of `cryptolab up` (producer + Spark driver + store) after {before} "
        "committed trade batches; restarted with the same checkpoint, replaying the tape again",
        **counts,
        recover_seconds=round(recovered_at - killed_at, 1),
        reconcile="off",
    )
