"""The fault rows' check bites: the real pipeline, run with a deliberately broken sink that
leaves out every 1,000th trade (tests/mutants/sitecustomize.py, ``CL_TEST_MUTANT``), fails
:func:`verify_store` with the exact number of trades it dropped; the same run without the
mutant passes. Any fault test runs with the mutant too:
``CL_TEST_MUTANT=drop-every-1000th pytest tests/reliability/test_fault_spark.py`` fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.reliability.pipeline import pipeline_env, replay, stream_settings, up, verify_store
from tests.reliability.results import record

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
MUTANT = "drop-every-1000th"


@pytest.mark.slow
@pytest.mark.row("fault", "Check bites: a sink that drops every 1,000th trade")
def test_verify_store_fails_on_a_sink_that_drops_every_1000th_trade(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    tape = tmp_path / "tape.jsonl"
    write_frames(tape, synth_frames(SYMBOLS, 90, 25, seed=61, jitter_ms=1000))
    outcomes: dict[str, str] = {}
    failure = ""
    for mutant in ("", MUTANT):
        env = pipeline_env(tmp_path / f"data{mutant}", CRYPTOLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
                           CL_TEST_MUTANT=mutant)  # fmt: skip
        run = up(replay(tape, "max"), env, tmp_path / f"up{mutant}.log")
        assert run.wait() == 0, run.output()[-3000:]
        assert ("CL_TEST_MUTANT: cryptolab.streaming.sink patched" in run.output()) == bool(mutant)
        try:
            counts = verify_store(env, tape, SYMBOLS)
            outcomes[mutant] = f"passed: lost {counts['lost']}"
        except AssertionError as exc:
            outcomes[mutant] = f"failed: {str(exc).splitlines()[0][:160]}"
            failure = str(exc)
    assert outcomes[""] == "passed: lost 0", outcomes
    trades_in = counts["trades_in"]
    dropped = trades_in // 1000
    assert outcomes[MUTANT].startswith("failed"), outcomes
    assert re.match(rf"lost {dropped} published trades", failure), failure
    record(
        "fault",
        "Check bites: a sink that drops every 1,000th trade",
        injected=f"CL_TEST_MUTANT={MUTANT} (tests/mutants): the store sink leaves out every "
        f"1,000th trade; the same tape ({trades_in:,} trades) run with and without it",
        **stream_settings(env),
        trades_in=trades_in,
        dropped_by_mutant=dropped,
        without_mutant=outcomes[""],
        with_mutant=outcomes[MUTANT],
    )
