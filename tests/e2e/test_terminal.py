"""`cryptolab up` on a terminal, as a person runs it: under a pseudo-terminal, Ctrl-C typed on
it mid-replay. The output must read like a clean stop (no traceback, JVM lines in files, a
closing summary), and the store must hold exactly what the summary says: every published
trade, and candles equal to the independent reference over those trades."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.e2e.helpers import dump_tables, environment, stored_candles
from tests.reference import assert_candles_equal, reference_candles, tape_trades

pytestmark = pytest.mark.slow

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
SUMMARY = re.compile(
    r"stopped after [^:]+: trades in ([\d,]+), stored ([\d,]+), candles \(10 s\) ([\d,]+)$"
)
TRANSCRIPT = Path(__file__).resolve().parents[2] / "build" / "terminal" / "up_ctrl_c.txt"
NOISE = ("Traceback", "py4j", "SPARK_JOB_CANCELLED", "FOREACH_BATCH", " WARN ", "Exception")


class Terminal:
    """A child process whose controlling terminal is a pty; what it writes, as a person sees it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a session leader with the pty as its terminal
            os.execve(argv[0], argv, env)
        self.text = ""

    def read(self, timeout: float) -> bool:
        """Read what arrives within ``timeout`` s; False once the child closed the terminal."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child's side is closed
            return False
        self.text += data.decode(errors="replace").replace("\r\n", "\n")
        return bool(data)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            if not self.read(1.0):
                break
        raise AssertionError(f"no {pattern!r} within {timeout:.0f} s; output:\n{self.text[-3000:]}")

    def ctrl_c(self) -> None:
        """Type Ctrl-C: the terminal sends SIGINT to its foreground process group."""
        os.write(self.fd, b"\x03")

    def finish(self, timeout: float) -> int:
        """Read until the child closes the terminal, then wait for it to exit."""
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline and self.read(1.0):
            pass
        closed = time.monotonic() - start
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.5)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(
            f"still running {timeout:.0f} s after Ctrl-C (terminal closed after {closed:.0f} s):"
            f"\n{self.text[-3000:]}"
        )


def processes_using(path: Path) -> list[str]:
    """Processes whose command line names ``path`` (the broker's config, the driver's log)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(path) in cmdline and proc.info["pid"] != os.getpid():
            found.append(f"{proc.info['pid']}: {cmdline[:200]}")
    return found


def test_ctrl_c_mid_replay_stops_cleanly_with_a_summary(tmp_path: Path) -> None:
    tape = tmp_path / "two.jsonl"
    write_frames(tape, synth_frames(SYMBOLS, 1800, 2, seed=15))
    trades = tape_trades(tape)
    data = tmp_path / "data"
    env = environment(data)
    argv = [sys.executable, "-m", "cryptolab", "up", "--source", "replay", "--tape", str(tape)]
    term = Terminal([*argv, "--speed", "10", "--no-dash"], env)
    try:
        # mid-replay (the tape lasts 180 s at 10x), whatever Spark has stored by then
        term.wait_for(r"progress frames=\d+ published=[1-9]\d{2,}", timeout=420)
    finally:
        term.ctrl_c()
        code = term.finish(timeout=300)
    out = term.text
    TRANSCRIPT.parent.mkdir(parents=True, exist_ok=True)
    TRANSCRIPT.write_text(out)  # what the person saw, for a look after the run
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 0, out[-3000:]
    assert not [line for line in lines if any(word in line for word in NOISE)], out
    assert len(lines) < 60, f"{len(lines)} lines: a person reads them all\n{out}"
    # the first lines say where the JVMs log; those files hold what the terminal does not show
    head = "\n".join(lines[:4])
    spark_log = data.resolve() / "logs" / "spark.log"
    assert str(spark_log) in head and str(data.resolve() / "kafka" / "logs") in head, head
    assert spark_log.stat().st_size > 0 and (data / "kafka" / "logs" / "server.log").exists()
    assert "stopping: storing what Kafka holds first" in out
    summary = SUMMARY.search(lines[-1])
    assert summary is not None, f"the last line is not the summary:\n{out[-2000:]}"
    trades_in, stored, candles = (int(g.replace(",", "")) for g in summary.groups())
    assert 0 < trades_in < len(trades), "Ctrl-C came mid-replay"
    assert stored == trades_in, "every published trade is in the store"
    assert not processes_using(data.resolve()), "no JVM of this run survives it"

    published = trades.head(trades_in)  # a replay publishes in tape order
    tables = dump_tables(env)
    stored_keys = [(row[0], int(row[1])) for row in tables["trades"]]
    assert stored_keys == sorted(zip(published.symbol, published.trade_id, strict=True))
    reference = reference_candles(published)
    assert candles == len(reference)
    assert_candles_equal(stored_candles(env, SYMBOLS), reference)


def test_a_part_that_fails_to_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    """Stack.stop and the streaming stage stop every part whatever the others do: here the
    streaming job and the dashboard raise when stopped, and still the broker (in its own
    process group) and Spark stop, the error is reported, and no process of the run is left."""
    import json
    import subprocess

    from cryptolab.bus.broker import free_port

    tape = tmp_path / "btc.jsonl"
    write_frames(tape, synth_frames(["BTCUSDT"], 30, 2, seed=16))
    data = tmp_path / "data"
    env = environment(data, CRYPTOLAB_DASH_PORT=str(free_port()))
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.failing_stop", str(tape)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["stack_error"] == "the streaming job failed to stop", "the first failure"
    assert "stopping dashboard failed" in done.stderr, "the second one is logged"
    assert result["broker_pid"] and not result["stack_broker_alive"], "broker stopped anyway"
    assert not result["stack_spark_usable"], "spark stopped after the job failed to"
    assert result["stage_error"] == "the streaming job failed to stop"
    assert not result["stage_spark_usable"], "the stage stopped spark anyway"
    assert not (data / "kafka" / "broker.pid").exists()
    assert not processes_using(data.resolve()), "no JVM of the run survives it"
