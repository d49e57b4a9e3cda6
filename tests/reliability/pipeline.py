"""The whole pipeline under test, run as a user runs it (`cryptolab up`, `cryptolab stream` in
subprocesses), and the end-of-run check every fault test shares.

Fault tests judge the *stream*: :func:`pipeline_env` turns the periodic and final reconcile off
(``CRYPTOLAB_RECONCILE_EVERY_SECONDS=0``), which would otherwise re-derive every window from the
raw trades before the check and hide a wrong streamed candle. :func:`verify_store` measures
before it asserts: what Kafka holds (read back with a plain consumer), what the store holds
(physical rows, without FINAL), and the candles against tests/reference.py.

``CL_TEST_MUTANT`` (see tests/mutants/sitecustomize.py) in a test's environment, or in the
environment pytest runs in, runs every pipeline process with that deliberate defect, to show the
checks catch it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptolab.settings import Settings
from tests.e2e.helpers import environment, stored_candles
from tests.reference import candle_differences, reference_candles, tape_trades

MUTANTS = Path(__file__).resolve().parents[1] / "mutants"


def pipeline_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A fresh topic per run, the reconcile off (the stream alone is judged), everything else
    from ``extra`` (CRYPTOLAB_* strings) or the defaults."""
    values = {
        "CRYPTOLAB_TOPIC": f"t_{uuid.uuid4().hex[:8]}",
        "CRYPTOLAB_RECONCILE_EVERY_SECONDS": "0",
        **extra,
    }
    env = environment(data_dir, **values)
    if env.get("CL_TEST_MUTANT"):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(MUTANTS), env.get("PYTHONPATH")]))
    return env


def stream_settings(env: dict[str, str]) -> dict[str, Any]:
    """The settings a fault row depends on, as ``env`` sets them (else the product default)."""

    def value(name: str) -> Any:
        default = Settings.model_fields[name].default
        return env.get(f"CRYPTOLAB_{name.upper()}", default)

    reconcile = float(value("reconcile_every_seconds"))
    fields: dict[str, Any] = {
        "reconcile": "off" if reconcile == 0 else f"every {reconcile:g} s",
        "watermark_seconds": float(value("watermark_seconds")),
        "trigger_seconds": float(value("trigger_seconds")),
    }
    if value("max_offsets_per_trigger"):
        fields["max_offsets_per_trigger"] = int(value("max_offsets_per_trigger"))
    return fields


@dataclass
class Run:
    """A `cryptolab` command running in the background, its output in ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float
    what: str

    @classmethod
    def start(cls, args: list[str], env: dict[str, str], log: Path) -> Run:
        handle = log.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cryptolab", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        return cls(proc, log, time.monotonic(), f"cryptolab {args[0]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 420) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise AssertionError(f"{self.what} did not finish:\n{self.output()[-3000:]}") from None

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def alive(self) -> bool:
        return self.proc.poll() is None


def up(args: list[str], env: dict[str, str], log: Path) -> Run:
    """`cryptolab up --no-dash ARGS`: feed, producer, Spark driver and store in one process."""
    return Run.start(["up", "--no-dash", *args], env, log)


def resume(env: dict[str, str], log: Path) -> Run:
    """The restart after a fault: `cryptolab stream --until-caught-up` on the same topic, data
    dir and checkpoint. Nothing is published again: it stores what Kafka already holds, from
    where the checkpoint says the stream stopped, and exits once caught up."""
    return Run.start(["stream", "--until-caught-up"], env, log)


def replay(tape: Path, speed: str) -> list[str]:
    """`cryptolab up` arguments: replay ``tape`` at ``speed`` until every trade is stored."""
    return ["--source", "replay", "--tape", str(tape), "--speed", speed, "--until-drained"]


def wait_until(
    what: str, done: Callable[[], bool], timeout: float, run: Run | None = None
) -> float:
    """Poll ``done`` every 0.1 s; return when it was first true (monotonic)."""
    deadline = time.monotonic() + timeout
    while not done():
        if run is not None and not run.alive():
            raise AssertionError(f"{run.what} exited while waiting for {what}:\n"
                                 f"{run.output()[-3000:]}")  # fmt: skip
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.1)
    return time.monotonic()


def commits(data_dir: Path, query: str = "trades") -> list[float]:
    """Modification times of the micro-batches committed so far by ``query``."""
    files = [p for p in data_dir.glob(f"checkpoints/*/{query}/commits/*") if p.name.isdigit()]
    return sorted(p.stat().st_mtime for p in files)


def committed_offset(data_dir: Path, query: str = "trades") -> int:
    """Kafka records (summed over partitions) that ``query`` has committed to the store, from
    its checkpoint: the end offsets of the last committed micro-batch."""
    files = [p for p in data_dir.glob(f"checkpoints/*/{query}/commits/*") if p.name.isdigit()]
    if not files:
        return 0
    last = max(files, key=lambda p: int(p.name))
    offsets = last.parent.parent / "offsets" / last.name
    source = json.loads(offsets.read_text().splitlines()[-1])  # one line per source
    return sum(int(o) for partitions in source.values() for o in partitions.values())


def in_kafka(env: dict[str, str]) -> int:
    """Messages in the run's topic now (Kafka's end offsets, summed)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=env["CRYPTOLAB_KAFKA_BOOTSTRAP"])
    try:
        topic = env["CRYPTOLAB_TOPIC"]
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    finally:
        consumer.close()


def published_trades(env: dict[str, str], timeout: float = 60) -> tuple[int, set[tuple[str, int]]]:
    """Every message of the run's topic read back with a plain Kafka consumer and the standard
    json module: (messages, distinct (symbol, trade_id))."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=env["CRYPTOLAB_KAFKA_BOOTSTRAP"], enable_auto_commit=False
    )
    try:
        topic = env["CRYPTOLAB_TOPIC"]
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        messages, ids = 0, set()
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} back within {timeout} s"
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    data = json.loads(record.value)
                    ids.add((data["symbol"], int(data["trade_id"])))
                    messages += 1
        assert messages == sum(end.values()), (messages, end)
        return messages, ids
    finally:
        consumer.close()


STORE_DUMP = """
import sys, orjson
from cryptolab import load_settings
from cryptolab.store import open_store
store = open_store(load_settings(), create=False)
trades, metrics = store.table("trades"), store.table("pipeline_metrics")
out = {
    "physical": store.query_rows(f"SELECT symbol, trade_id FROM {trades}"),
    "final": [[str(v) for v in row] for row in store.query_rows(
        "SELECT symbol, trade_id, price, qty, toUnixTimestamp64Micro(trade_time), "
        f"is_buyer_maker FROM {trades} FINAL")],
    "dropped_late": store.query_rows(
        f"SELECT sum(rows_dropped_by_watermark) FROM {metrics} FINAL")[0][0],
}
sys.stdout.write(orjson.dumps(out).decode())
"""


def store_rows(env: dict[str, str]) -> dict[str, Any]:
    """The store as it is, read in a separate process: ``physical`` (symbol, trade_id) of every
    trade row without FINAL, ``final`` rows with their values, ``dropped_late`` (trades the
    stream's watermark dropped from candles, from pipeline_metrics)."""
    done = subprocess.run([sys.executable, "-c", STORE_DUMP], env=env, text=True,
                          capture_output=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    out["physical"] = [(symbol, int(trade_id)) for symbol, trade_id in out["physical"]]
    return out


def stored_ids(env: dict[str, str]) -> set[tuple[str, int]]:
    """Distinct (symbol, trade_id) in the store now."""
    return set(store_rows(env)["physical"])


def verify_store(env: dict[str, str], tape: Path, symbols: list[str]) -> dict[str, Any]:
    """Measure the store against what was published and against the tape, then assert: the
    whole tape in Kafka once, every published trade stored with the tape's values, no physical
    duplicate rows, candles equal to the independent reference. Returns the measured figures
    for the row; every one of them is computed before any assertion."""
    trades = tape_trades(tape)
    tape_ids = set(zip(trades["symbol"], trades["trade_id"].astype(int), strict=True))
    messages, published = published_trades(env)
    store = store_rows(env)
    stored = set(store["physical"])
    by_id = {
        (s, int(t)): (p, q, int(tt), bool(m))
        for s, t, p, q, tt, m in zip(*(trades[c] for c in trades.columns), strict=True)
    }
    differing = sum(
        1
        for s, t, p, q, tt, m in store["final"]
        if by_id.get((s, int(t))) != (Decimal(p), Decimal(q), int(tt), m in ("True", "1"))
    )
    problems = candle_differences(stored_candles(env, symbols), reference_candles(trades))
    counts = {
        "trades_in": len(tape_ids),
        "published_messages": messages,
        "published_trades": len(published),
        "trades_stored": len(stored),
        "lost": len(published - stored),
        "stored_not_published": len(stored - published),
        "physical_trade_rows": len(store["physical"]),
        "duplicates": len(store["physical"]) - len(stored),
        "trades_differing_from_tape": differing,
        "dropped_by_watermark": int(store["dropped_late"] or 0),
        "candle_differences": len(problems),
        "candles_equal_reference": not problems,
    }
    assert published == tape_ids, (
        f"Kafka holds {len(published)} of the tape's {len(tape_ids)} trades "
        f"({len(tape_ids - published)} missing, {len(published - tape_ids)} not on the tape)"
    )
    assert messages == len(published), f"{messages - len(published)} duplicate messages in Kafka"
    assert counts["lost"] == 0 and counts["stored_not_published"] == 0, (
        f"lost {counts['lost']} published trades; {counts['stored_not_published']} stored "
        f"trades were never published\n{counts}"
    )
    assert counts["duplicates"] == 0, f"{counts['duplicates']} physical duplicate trade rows"
    assert differing == 0, f"{differing} stored trades differ from the tape"
    assert not problems, f"candles differ from the reference: {problems[:5]}"
    return counts
