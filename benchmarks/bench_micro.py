"""Row 2: parse + normalize per frame, our batch parser against json.loads + float()."""

from __future__ import annotations

import json

from benchmarks.common import Baseline, Clause, Result, interleaved, spread
from cryptolab.bus.producer import BATCH_FRAMES
from cryptolab.errors import FrameError
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.model import now_us, parse_frame, parse_frames


def baseline_parse(frame: str) -> tuple[object, ...]:
    """The original producer: json.loads, then float() per numeric field."""
    data = json.loads(frame)["data"]
    return (
        data["s"],
        int(data["t"]),
        float(data["p"]),
        float(data["q"]),
        int(data["T"]),
        int(data["E"]),
        bool(data["m"]),
    )


def parse_cost(rounds: int = 9) -> Result:
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 120, 50, seed=1))
    n = len(frames)
    parsed: list[object] = []

    clock = now_us()  # the producer's clock: after every trade time of the tape

    def ours() -> None:  # what the producer does with frames it has at hand (a tape)
        parsed.clear()
        for start in range(0, n, BATCH_FRAMES):
            parsed.extend(parse_frames(frames[start : start + BATCH_FRAMES], clock))

    def one_by_one() -> None:  # a live feed: each frame as it arrives
        for frame in frames:
            parse_frame(frame, clock)

    def base() -> None:
        for frame in frames:
            baseline_parse(frame)

    ours_s, single_s, base_s = interleaved([ours, one_by_one, base], rounds)
    bad = sum(isinstance(p, FrameError) for p in parsed)
    per_frame = [[round(t / n * 1e6, 4) for t in times] for times in (ours_s, single_s, base_s)]
    result = Result(
        2,
        "parse + normalize per frame",
        "µs",
        per_frame[0],
        ">= 5x faster",
        [],
        [Baseline("json.loads + float()", per_frame[2], "per frame, one by one")],
        notes=f"{n:,} synthetic frames in batches of {BATCH_FRAMES} (parse_frames, as the "
        f"producer publishes a tape), {rounds} rounds; ours validates every field exactly (DLQ "
        "reasons) and must accept every frame",
        extra={"one_by_one_us": spread(per_frame[1])},
        error=f"{bad} of {n} valid frames rejected" if bad or len(parsed) != n else None,
    )
    ratio = result.ratio(result.baselines[0]) or 0.0
    result.clauses = [Clause(">= 5x faster", round(ratio, 2), ratio >= 5)]
    return result
