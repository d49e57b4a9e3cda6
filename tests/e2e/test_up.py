"""`cryptolab up --source replay --until-drained` end to end, as a user runs it.

Each run is a separate process (its own Spark driver and chDB), then `cryptolab query candles`
reads the store; the CSV must equal an independent pandas computation over the same tape.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.e2e.helpers import environment, replay_until_drained, stored_candles
from tests.reference import assert_candles_equal, reference_candles, tape_trades


def test_one_symbol_on_an_external_broker(tmp_path: Path, kafka_bootstrap: str) -> None:
    tape = tmp_path / "btc.jsonl.gz"
    write_frames(tape, synth_frames(["BTCUSDT"], 180, 30, seed=21))
    env = environment(
        tmp_path / "data",
        CRYPTOLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CRYPTOLAB_TOPIC=f"t_{uuid.uuid4().hex[:8]}",
    )
    run = replay_until_drained(tape, env)
    assert not (tmp_path / "data" / "kafka").exists(), "no local broker with an external one"
    trades = tape_trades(tape)
    assert_candles_equal(stored_candles(env, ["BTCUSDT"]), reference_candles(trades))
    assert " changed=0 " in run.stderr, (
        "streaming alone was exact: the final reconcile fixed nothing"
    )
    for interval, ms in (("1m", 60_000), ("5m", 300_000)):
        assert_candles_equal(
            stored_candles(env, ["BTCUSDT"], interval), reference_candles(trades, ms)
        )


def test_two_symbols_out_of_order_on_the_embedded_broker(tmp_path: Path) -> None:
    """The default path: `up` starts its own Kafka broker, and stops it at the end."""
    tape = tmp_path / "two.jsonl"
    write_frames(tape, synth_frames(["BTCUSDT", "ETHUSDT"], 120, 25, seed=22, jitter_ms=3000))
    reference = reference_candles(tape_trades(tape))
    env = environment(tmp_path / "data")
    run = replay_until_drained(tape, env)
    assert not (tmp_path / "data" / "kafka" / "broker.pid").exists(), "broker stopped at exit"
    assert_candles_equal(stored_candles(env, ["BTCUSDT", "ETHUSDT"]), reference)
    assert " changed=0 " in run.stderr, "3 s of disorder is within the watermark: stream exact"


BAD_LINES = [
    "this is not json",
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1793491200000,"s":"BTCUSDT","t":"x",'
    '"p":"1.0","q":"1.0","T":1793491200000,"m":true,"M":true}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1793491200000,"s":"BTCUSDT","t":1,'
    '"p":"1.0","q":"-2.0","T":1793491200000,"m":true,"M":true}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1793491200000,"s":"BTCUSDT","t":2,'
    '"p":"1.0","q":"0","T":1793491200000,"m":true,"M":true}}',
    '{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1793491200000,"s":"BTCUSDT"}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1793491200000,"s":"BTCUSDT","t":3,'
    '"p":1.5,"q":"1.0","T":1793491200000,"m":"no","M":true}}',
]


def test_bad_input_goes_to_the_dlq_and_good_trades_all_count(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    good = list(synth_frames(["BTCUSDT"], 60, 20, seed=23))
    lines = list(good)
    for i, bad in enumerate(BAD_LINES):
        lines.insert(100 + 37 * i, bad)
    tape = tmp_path / "bad.jsonl"
    write_frames(tape, lines)
    tag = uuid.uuid4().hex[:8]
    env = environment(
        tmp_path / "data",
        CRYPTOLAB_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CRYPTOLAB_TOPIC=f"t_{tag}",
        CRYPTOLAB_DLQ_TOPIC=f"dlq_{tag}",
    )
    replay_until_drained(tape, env)
    reference = reference_candles(tape_trades(tape))
    assert sum(c["trades"] for c in reference.values()) == len(good)  # type: ignore[misc]
    assert_candles_equal(stored_candles(env, ["BTCUSDT"]), reference)

    consumer = KafkaConsumer(
        f"dlq_{tag}",
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    dlq = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    assert [d["raw"] for d in dlq] == BAD_LINES
    reasons = [d["reason"] for d in dlq]
    for expected in (
        "invalid JSON",
        "trade id ('t') must be an integer",
        "must be positive",
        "must be positive",
        "unknown event type 'kline'",
        "must be a decimal string",
    ):
        assert any(expected in r for r in reasons), (expected, reasons)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--source", "binance", "--until-drained"], "--until-drained needs --source replay"),
        (["up", "--source", "replay", "--tape", "/nonexistent.jsonl"], "tape not found"),
        (["query", "candles", "--symbol", "BTCUSDT", "--interval", "3s"], "unknown interval"),
    ],
)
def test_bad_cli_input_is_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", *args],
        text=True,
        capture_output=True,
        env=environment(tmp_path),
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
