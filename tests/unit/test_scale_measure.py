"""The scale harness's arithmetic, on made-up observations with known answers: freshness per
trade (position in its window vs the polled candle count), late trades, the lag trend."""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks.scale_measure import freshness, lag_trend
from cryptolab.feeds.tapes.tape import write_frames
from cryptolab.frames import trade_frame

E0 = 1_793_491_200_000  # the tape's first event time
T0 = 1_800_000_000_000  # wall time the replay emitted it


def frame(symbol: str, trade_id: int, offset_ms: int) -> str:
    t = E0 + offset_ms
    return trade_frame(symbol, trade_id, "1.00000000", "1.00000000", t, False, True, t)


def test_each_trade_is_fresh_from_its_virtual_time_to_the_poll_that_counts_it(
    tmp_path: Path,
) -> None:
    tape = tmp_path / "t.jsonl"
    write_frames(tape, [frame("AAA", 1, 0), frame("AAA", 2, 500), frame("BBB", 7, 900),
                        frame("AAA", 3, 10_200), frame("BBB", 8, 12_000)])  # fmt: skip
    polls = [
        [T0 + 1_000, "AAA", E0, 1],  # AAA's first trade: 1.0 s
        [T0 + 2_000, "AAA", E0, 2],  # its second: 1.5 s
        [T0 + 2_000, "BBB", E0, 1],  # BBB 7: 1.1 s
        [T0 + 11_000, "AAA", E0 + 10_000, 1],  # AAA 3 (next window): 0.8 s
        # BBB 8 never counted: late
    ]
    observations = tmp_path / "o.jsonl"
    observations.write_text("".join(json.dumps(p) + "\n" for p in polls))
    result = freshness(tape, observations, T0, E0)
    assert result["trades"] == 5 and result["late"] == 1
    assert result["p50"] == 1.1  # the middle one of 0.8, 1.0, 1.1, 1.5, inf
    assert math.isinf(result["p99"])
    assert result["max_seen"] == 1.5


def test_a_trade_counted_after_the_deadline_is_late(tmp_path: Path) -> None:
    tape = tmp_path / "t.jsonl"
    write_frames(tape, [frame("AAA", 1, 0), frame("AAA", 2, 100)])
    observations = tmp_path / "o.jsonl"
    observations.write_text(json.dumps([T0 + 60_050, "AAA", E0, 2]) + "\n")
    result = freshness(tape, observations, T0, E0)
    assert result["late"] == 1 and result["p50"] == 59.95  # 60.05 s is past the deadline


def test_lag_trend_tells_a_sawtooth_from_a_climb() -> None:
    steady = [(float(t), 3000 + (t % 6) * 500, 5000 * t) for t in range(0, 300, 2)]
    climbing = [(float(t), 100 * t, 5000 * t) for t in range(0, 300, 2)]
    assert lag_trend(steady, 5000)["bounded"] is True
    climb = lag_trend(climbing, 5000)
    assert climb["bounded"] is False and climb["slope_per_s"] == 100.0
    ended = [*steady, (300.0, 0, 5000 * 298), (302.0, 0, 5000 * 298)]
    assert lag_trend(ended, 5000)["samples"] == lag_trend(steady, 5000)["samples"]
