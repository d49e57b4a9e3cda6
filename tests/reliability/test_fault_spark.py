"""The Spark driver (`cryptolab up`, which hosts it) SIGKILLed mid-stream, then restarted from
its checkpoint with `cryptolab stream --until-caught-up`: nothing is published again, so a
trade the restart failed to store would be missing. No reconcile: checkpoint recovery and the
sink's insert dedup tokens alone must leave the store equal to the tape.

The tape is published at full speed and Spark reads the backlog 1,500 records per
micro-batch, so the whole tape is in Kafka when the driver dies with only part of it stored."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.reliability.pipeline import (
    commits,
    committed_offset,
    in_kafka,
    pipeline_env,
    replay,
    resume,
    stored_ids,
    stream_settings,
    up,
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
        CRYPTOLAB_TRIGGER_SECONDS="0.5",
        CRYPTOLAB_MAX_OFFSETS_PER_TRIGGER="1000",
    )
    first = up(replay(tape, "max"), env, tmp_path / "first.log")
    try:
        wait_until("2 committed batches", lambda: len(commits(data, "trades")) >= 2,
                   240, first)  # fmt: skip
        first.kill()
    finally:
        if first.alive():
            first.kill()
    killed_at = time.monotonic()
    published = in_kafka(env)
    committed = committed_offset(data, "trades")  # read after the kill: nothing moves now
    stored_at_kill = len(stored_ids(env))
    before = len(commits(data, "trades"))
    second = resume(env, tmp_path / "second.log")
    try:
        recovered_at = wait_until(
            "a batch committed by the restarted stream",
            lambda: len(commits(data, "trades")) > before,
            240,
            second,
        )
        assert second.wait() == 0, second.output()[-3000:]
    finally:
        if second.alive():
            second.kill()
    counts = verify_store(env, tape, SYMBOLS)
    # the kill came mid-stream: the tape was all in Kafka, only part of it stored
    assert published == counts["trades_in"], (published, counts)
    assert committed < published and stored_at_kill < published, (committed, stored_at_kill)
    record(
        "fault",
        "Spark driver SIGKILL + restart from checkpoint",
        injected=f"SIGKILL of `cryptolab up` (producer + Spark driver + store) with "
        f"{published:,} trades in Kafka, {committed:,} committed by the stream and "
        f"{stored_at_kill:,} in the store; restarted with `cryptolab stream --until-caught-up` "
        "(same checkpoint, nothing re-published)",
        **stream_settings(env),
        **counts,
        in_kafka_at_kill=published,
        committed_at_kill=committed,
        stored_at_kill=stored_at_kill,
        stored_by_restart=counts["trades_stored"] - stored_at_kill,
        recover_seconds=round(recovered_at - killed_at, 1),
    )
