"""Soak: the whole embedded stack (tape paced in real time -> producer -> embedded Kafka ->
Spark -> chDB) for N minutes at 10x a Binance-like rate, with consumer lag, memory (PSS), open
file handles and threads of `cryptolab up`'s whole process tree sampled every 10 s. (The live
client's own faults are covered by tests/reliability/test_fault_feed.py; here the feed is the
replay source so the soak measures the stack, not a second process serving the tape.)

    .venv/bin/python -m tests.reliability.soak --minutes 20 --out reports/reliability/soak.json

10x a Binance-like rate: BTCUSDT averages ~46 trades/s, so 460 trades/s here, spread over
three symbols (bursts included: tapes come from cryptolab.feeds.tapes.synth). The test suite starts
this in the background at the beginning of the session (tests/reliability/test_soak.py) and
checks its result at the end, so the soak overlaps the rest of the suite instead of adding
20 minutes to it; the load of the other tests only makes it harder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from cryptolab.bus.broker import free_port
from cryptolab.bus.topics import end_offsets
from tests.e2e.helpers import environment

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


def stored_summary(env: dict[str, str]) -> dict[str, Any]:
    """Per symbol: distinct trades (FINAL), physical rows, min and max id."""
    script = (
        "import json\nfrom cryptolab import load_settings\nfrom cryptolab.store import open_store\n"
        "s = open_store(load_settings(), create=False)\n"
        "rows = s.query_rows(f'SELECT symbol, count(), min(trade_id), max(trade_id) FROM "
        '{s.table("trades")} FINAL GROUP BY symbol\')\n'
        "phys = s.query_rows(f'SELECT count() FROM {s.table(\"trades\")}')[0][0]\n"
        "print(json.dumps({'symbols': {r[0]: r[1:] for r in rows}, 'physical': phys}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, text=True,
                          capture_output=True, timeout=300, check=True)  # fmt: skip
    return dict(json.loads(done.stdout))


def stop(up: subprocess.Popen[bytes], data: Path) -> None:
    """Stop `cryptolab up` if it still runs (Ctrl-C first, so it stops its broker), and any
    broker it left behind (the broker runs in its own session)."""
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
    pid_file = data / "kafka" / "broker.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def run(minutes: float, work: Path, out: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    tape = work / "tape.jsonl.gz"
    seconds = minutes * 60
    cli = [sys.executable, "-m", "cryptolab"]
    subprocess.run([*cli, "tape", "synth", "--symbols", ",".join(SYMBOLS), "--seconds",
                    str(int(seconds + 120)), "--rate", f"{RATE_PER_SYMBOL:.3f}", "--out",
                    str(tape)], check=True, env=environment(work / "synth"),
                   stdout=subprocess.DEVNULL)  # fmt: skip
    port = free_port()
    data = work / "data"
    env = environment(data, CRYPTOLAB_KAFKA_PORT=str(port))
    log = (work / "up.log").open("wb")
    started = time.monotonic()
    up = subprocess.Popen(
        [*cli, "up", "--source", "replay", "--tape", str(tape), "--speed", "1",
         "--seconds", str(seconds), "--no-dash"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    samples: list[Sample] = []
    try:
        while up.poll() is None:
            samples.append(sample(up.pid, started, f"127.0.0.1:{port}", data))
            print(json.dumps(flat(samples[-1])), flush=True)
            deadline = time.monotonic() + SAMPLE_EVERY_S
            while up.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        rc = up.returncode
    finally:
        stop(up, data)
    tail = (work / "up.log").read_text(errors="replace")[-4000:]
    result: dict[str, Any] = {
        "minutes": minutes,
        "rate_trades_per_s": 460,
        "symbols": list(SYMBOLS),
        "returncode": rc,
        "wall_seconds": round(time.monotonic() - started, 1),
        "samples": [flat(s) for s in samples],
        "log_tail": tail,
        "tape": str(tape),
    }
    if rc == 0:
        result["stored"] = stored_summary(env)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up in run()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--work", type=Path, default=None, help="scratch dir (default: temp)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="cryptolab-soak-"))
    os.environ.pop("CRYPTOLAB_DATA_DIR", None)
    run(args.minutes, work, args.out)


if __name__ == "__main__":
    main()
