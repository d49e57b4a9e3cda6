"""Soak: the whole embedded stack (tape paced in real time -> producer -> embedded Kafka ->
Spark -> chDB) on an N-minute tape at 10x a Binance-like rate (`cryptolab up --until-drained`:
N minutes of publishing whatever the start-up takes, then the drain), with consumer lag, memory
(PSS), open file handles and threads of `cryptolab up`'s whole process tree sampled every 10 s.
(The live client's own faults are covered by tests/reliability/test_fault_feed.py; here the
feed is the replay source so the soak measures the stack, not a second process serving the
tape.)

    .venv/bin/python -m tests.reliability.soak --minutes 20 --out build/soak/result.json

10x a Binance-like rate: BTCUSDT averages ~46 trades/s, so 460 trades/s here, spread over
three symbols (bursts included: tapes come from cryptolab.feeds.tapes.synth). The test suite starts
this in the background at the beginning of the session (tests/reliability/test_soak.py) and
checks its result at the end, so the soak overlaps the rest of the suite instead of adding to
it; the load of the other tests only makes it harder. `make test` runs a short soak
(SOAK_MINUTES, default 4), `make soak` the 20-minute one.

After the run: loss and duplicates from Kafka, the tape and the store (soak_loss.py); crashes
are the process exits observed: `cryptolab up` ending with an error, or one of its JVMs (Spark,
Kafka) disappearing before the drain finished. If the process that started the soak (pytest)
goes away, the soak stops its stack and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from cryptolab.bus.broker import free_port
from cryptolab.bus.topics import end_offsets
from tests.e2e.helpers import environment
from tests.reliability.soak_loss import (
    compare,
    producer_published,
    published_ids,
    stored_ids,
    tape_ids,
)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
RATE_PER_SYMBOL = 460 / len(SYMBOLS)
SAMPLE_EVERY_S = 10.0
TOPIC = "binance_trades"


@dataclass
class Sample:
    t: float  # seconds since `cryptolab up` started
    lag: int | None  # messages in Kafka not yet committed to the store by Spark
    in_kafka: int | None
    usage: Usage  # of the whole tree: python + chDB, Spark's JVM, Kafka's JVM, workers


def committed_offsets(checkpoint: Path) -> int | None:
    """Kafka offsets (summed over partitions) of the last batch Spark committed."""
    commits = [int(p.name) for p in checkpoint.glob("commits/*") if p.name.isdigit()]
    if not commits:
        return 0
    lines = (checkpoint / "offsets" / str(max(commits))).read_text().splitlines()
    offsets = json.loads(lines[2])
    return sum(int(v) for part in offsets.values() for v in part.values())


THREAD_STATS = re.compile(r"^/proc/\d+/task/\d+/")


@dataclass
class Usage:
    pss_mb: float = 0.0
    open_files: int = 0
    thread_stat_files: int = 0
    threads: int = 0
    processes: int = 0


def _fd_targets(pid: int) -> list[str]:
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return targets


def tree_usage(pid: int) -> Usage:
    """Memory, handles and threads of ``pid`` and its descendants.

    PSS, not RSS: a process forked for a moment shares its parent's pages, and summing RSS
    would count them twice. Handles and threads: of processes alive for 30 s or more (a
    short-lived child only inherits its parent's handles for a moment). chDB keeps three
    /proc/<pid>/task/<tid>/ files open per pool thread that has run a query; those are counted
    apart (``thread_stat_files``), as they follow the thread count, not leaked handles."""
    usage = Usage()
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return usage
    now = time.time()
    for proc in procs:
        try:
            pss = proc.memory_full_info().pss
            old = now - proc.create_time() >= 30
            threads = proc.num_threads()
            targets = _fd_targets(proc.pid) if old else []
        except (psutil.NoSuchProcess, OSError):
            continue
        usage.pss_mb += pss / 2**20
        usage.processes += 1
        if old:
            stats = sum(1 for t in targets if THREAD_STATS.match(t))
            usage.thread_stat_files += stats
            usage.open_files += len(targets) - stats
            usage.threads += threads
    usage.pss_mb = round(usage.pss_mb, 1)
    return usage


def sample(pid: int, started: float, bootstrap: str, data: Path) -> Sample:
    usage = tree_usage(pid)
    lag = in_kafka = None
    checkpoints = list(data.glob("checkpoints/*/trades"))
    try:
        in_kafka = sum(end_offsets(bootstrap, TOPIC).values())
        done = committed_offsets(checkpoints[0]) if checkpoints else 0
        lag = None if done is None else max(0, in_kafka - done)
    except Exception:  # broker not up yet, or the checkpoint mid-write: no reading this time
        pass
    elapsed = round(time.monotonic() - started, 1)
    return Sample(elapsed, lag, in_kafka, usage)


def flat(sample: Sample) -> dict[str, Any]:
    row = asdict(sample)
    row.update(row.pop("usage"))
    return row


def stop(up: subprocess.Popen[bytes], data: Path) -> None:
    """Stop `cryptolab up` if it still runs (Ctrl-C first, so it stops its broker and Spark),
    then whatever of its process tree outlived it: a Spark JVM orphaned by a stop during
    start-up, and the broker (it runs in its own session)."""
    try:
        tree = psutil.Process(up.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(timeout=30)
    _gone, alive = psutil.wait_procs(tree, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    pid_file = data / "kafka" / "broker.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


class ParentGone(SystemExit):
    """pytest (or whoever started the soak) died without stopping it."""


def java_children(pid: int) -> dict[int, str]:
    """Long-lived (30 s or more) JVMs under ``pid``: pid -> what it runs."""
    found: dict[int, str] = {}
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return found
    now = time.time()
    for proc in children:
        try:
            if proc.name() == "java" and now - proc.create_time() >= 30:
                cmd = proc.cmdline()
                found[proc.pid] = next((c for c in cmd if c == "kafka.Kafka"), "spark driver")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@dataclass
class Watch:
    """Crashes seen while `cryptolab up` runs: JVMs that vanish before the drain is over."""

    log: Path
    jvms: dict[int, str] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)

    def check(self, pid: int, t: float) -> None:
        now = java_children(pid)
        gone = {p: what for p, what in self.jvms.items() if p not in now}
        if gone and "drained:" not in self.log.read_text(errors="replace"):
            self.crashes += [f"{what} (pid {p}) exited at t={t:.0f} s" for p, what in gone.items()]
        self.jvms = {**{p: w for p, w in self.jvms.items() if p not in gone}, **now}


def run(minutes: float, work: Path, out: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    tape = work / "tape.jsonl.gz"
    seconds = minutes * 60
    cli = [sys.executable, "-m", "cryptolab"]
    subprocess.run([*cli, "tape", "synth", "--symbols", ",".join(SYMBOLS), "--seconds",
                    str(int(seconds)), "--rate", f"{RATE_PER_SYMBOL:.3f}", "--out",
                    str(tape)], check=True, env=environment(work / "synth"),
                   stdout=subprocess.DEVNULL)  # fmt: skip
    port = free_port()
    data = work / "data"
    env = environment(data, CRYPTOLAB_KAFKA_PORT=str(port))
    log_path = work / "up.log"
    log = log_path.open("wb")
    parent = os.getppid()
    started = time.monotonic()
    up = subprocess.Popen(
        [*cli, "up", "--source", "replay", "--tape", str(tape), "--speed", "1",
         "--until-drained", "--no-dash"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    samples: list[Sample] = []
    watch = Watch(log_path)
    try:
        while up.poll() is None:
            if os.getppid() != parent:
                raise ParentGone("the process that started the soak went away: stopping")
            samples.append(sample(up.pid, started, f"127.0.0.1:{port}", data))
            watch.check(up.pid, samples[-1].t)
            print(json.dumps(flat(samples[-1])), flush=True)
            deadline = time.monotonic() + SAMPLE_EVERY_S
            while up.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        rc = up.returncode
    finally:
        stop(up, data)
    wall = round(time.monotonic() - started, 1)
    text = log_path.read_text(errors="replace")
    crashes = list(watch.crashes)
    if rc != 0:
        crashes.append(f"cryptolab up exited with code {rc}")
    result: dict[str, Any] = {
        "minutes": minutes,
        "rate_trades_per_s": 460,
        "symbols": list(SYMBOLS),
        "returncode": rc,
        "crashes": crashes,
        "wall_seconds": wall,
        "samples": [flat(s) for s in samples],
        "log_tail": text[-4000:],
        "producer_published": producer_published(text),
    }
    try:
        stored = stored_ids(env, work / "stored.json")
        published = published_ids(data, port, TOPIC)
        result["loss"] = compare(tape_ids(tape), published, stored)
    except Exception as exc:  # reported, and judged by the test
        detail = exc.stderr[-2000:] if isinstance(exc, subprocess.CalledProcessError) else ""
        result["loss_error"] = f"{type(exc).__name__}: {exc} {detail}".strip()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up in run()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--work", type=Path, default=None, help="scratch dir (default: temp)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="cryptolab-soak-"))
    os.environ.pop("CRYPTOLAB_DATA_DIR", None)
    try:
        run(args.minutes, work, args.out)
    except ParentGone:
        shutil.rmtree(work, ignore_errors=True)  # nobody is left to read or remove it
        raise


if __name__ == "__main__":
    main()
