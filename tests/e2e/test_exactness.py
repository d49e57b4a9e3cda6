"""Exactness whatever happens to the processes: replays, SIGKILL, late trades."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.e2e.helpers import (
    cryptolab,
    dump_tables,
    environment,
    replay_until_drained,
    stored_candles,
)
from tests.reference import WINDOW_MS, assert_candles_equal, reference_candles, tape_trades


def _env(tmp_path: Path, kafka_bootstrap: str, **extra: str) -> dict[str, str]:
    return environment(
        tmp_path / "data",
        CRYPTOLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CRYPTOLAB_TOPIC=f"t_{uuid.uuid4().hex[:8]}",
        **extra,
    )


def test_same_tape_twice_leaves_tables_identical(tmp_path: Path, kafka_bootstrap: str) -> None:
    tape = tmp_path / "t.jsonl"
    write_frames(tape, synth_frames(["BTCUSDT", "ETHUSDT"], 90, 20, seed=41, jitter_ms=2000))
    env = _env(tmp_path, kafka_bootstrap)
    replay_until_drained(tape, env)
    first = dump_tables(env)
    replay_until_drained(tape, env)  # every trade published to Kafka a second time
    second = dump_tables(env)
    assert second["trades"] == first["trades"]
    assert second["candles_10s"] == first["candles_10s"]
    assert second["candles_10s_physical_rows"] == first["candles_10s_physical_rows"], (
        "the second replay wrote no candle rows at all"
    )
    assert len(first["trades"]) == len(tape_trades(tape))


def _delay_some(frames: list[str], count: int, delays_ms: range) -> tuple[list[str], list[dict]]:
    """Deliver ``count`` trades 30-60 s after they happened (re-sorted by arrival time E)."""
    moved: list[dict] = []
    out = []
    step = len(frames) // (3 * count)
    chosen = set(range(len(frames) // 5, len(frames) // 5 + step * count, step))
    for i, frame in enumerate(frames):
        message = orjson.loads(frame)
        if i in chosen:
            data = message["data"]
            data["E"] = data["T"] + delays_ms[(i * 7919) % len(delays_ms)]
            moved.append(data)
        out.append(message)
    out.sort(key=lambda m: m["data"]["E"])
    return [orjson.dumps(m).decode() for m in out], moved


def test_late_trades_are_kept_and_reconcile_corrects_their_windows(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 240, 10, seed=43))
    late_frames, moved = _delay_some(frames, 12, range(30_000, 60_001, 1000))
    tape = tmp_path / "late.jsonl"
    write_frames(tape, late_frames)
    # small micro-batches, so the watermark advances through the tape as it would live
    env = _env(
        tmp_path,
        kafka_bootstrap,
        CRYPTOLAB_RECONCILE_EVERY_SECONDS="0",
        CRYPTOLAB_MAX_OFFSETS_PER_TRIGGER="100",
        CRYPTOLAB_TRIGGER_SECONDS="0.2",
    )
    replay_until_drained(tape, env)
    reference = reference_candles(tape_trades(tape))
    late_windows = {(d["s"], d["T"] // WINDOW_MS * WINDOW_MS) for d in moved}

    before = stored_candles(env, ["BTCUSDT", "ETHUSDT"])
    wrong = {k for k in reference if before.get(k, {}).get("trades") != reference[k]["trades"]}
    assert wrong == late_windows, "the stream dropped exactly the late trades"
    tables = dump_tables(env)
    assert len(tables["trades"]) == len(frames), "late trades are stored all the same"
    assert tables["dropped_by_watermark"] == len(moved), "and counted as late"

    report = cryptolab(["reconcile"], env).stdout
    changed_lines = [line for line in report.splitlines() if line.startswith("  ")]
    assert len(changed_lines) == len(late_windows)
    for symbol, window in late_windows:
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(window / 1000))
        assert any(symbol in line and iso in line for line in changed_lines), (symbol, iso)
    assert_candles_equal(stored_candles(env, ["BTCUSDT", "ETHUSDT"]), reference)
    assert "0 changed" in cryptolab(["reconcile"], env).stdout, "reconcile is idempotent"
