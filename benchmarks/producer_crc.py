"""Row 1's producer with kafka-python's record-batch checksum in C (the ``crc32c`` package, a
cryptolab dependency) against its pure-Python fallback, side by side on one local broker.

kafka-python computes the CRC32C of every record batch it sends; without the ``crc32c`` C
extension it does so byte by byte in Python, in the sender thread, holding the GIL the
publishing thread needs. Rounds alternate C / Python on fresh topics of the same broker.

    .venv/bin/python -m benchmarks.producer_crc [--rounds 3] [--seconds 100]

Writes ``benchmarks/results/producer_crc.md``. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from kafka.record import default_records, util
from kafka.record._crc32c import crc as crc32c_python

from benchmarks.bench_kafka import publish_rate
from cryptolab.bus.broker import LocalBroker
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.settings import load_settings

RESULTS = Path(__file__).resolve().parent / "results"


@contextmanager
def checksum(python: bool) -> Iterator[None]:
    """kafka-python's batch checksum as it is without the C extension (python=True)."""
    original: Callable[..., int] = default_records.calc_crc32c
    if python:
        default_records.calc_crc32c = lambda data: crc32c_python(data)
    try:
        yield
    finally:
        default_records.calc_crc32c = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=100, help="of tape at 100 trades/s x 3")
    args = parser.parse_args()
    if util.crc32c_c is None:
        raise SystemExit("the crc32c package is not installed: run `make bootstrap`")
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT", "BNBUSDT"], args.seconds, 100, seed=3))
    rates: dict[str, list[float]] = {"C (crc32c)": [], "pure Python": []}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        broker = LocalBroker(load_settings(data_dir=Path(tmp)))
        bootstrap = broker.start()
        try:
            publish_rate(bootstrap, "crc_warmup", frames[:2000])  # warm the broker up
            for round_ in range(args.rounds):
                order = [False, True] if round_ % 2 == 0 else [True, False]
                for python in order:
                    with checksum(python):
                        rate = publish_rate(bootstrap, f"crc_{uuid.uuid4().hex[:8]}", frames)
                    rates["pure Python" if python else "C (crc32c)"].append(rate)
                    print(f"round {round_ + 1} {'python' if python else 'C':>6}: {rate:,.0f} msg/s")
        finally:
            broker.stop()
    c, py = (statistics.median(v) for v in rates.values())
    lines = [
        "# Producer: kafka-python's batch checksum in C vs pure Python",
        "",
        "Command: `.venv/bin/python -m benchmarks.producer_crc`  ",
        f"{len(frames):,} synthetic frames per run (row 1's producer: parse, validate, JSON, "
        f"acks=all, idempotent), {args.rounds} rounds alternating, one local broker.  ",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, 1-min load "
        f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| checksum | runs (msg/s) | median msg/s |",
        "|---|---|---:|",
    ]
    for name, values in rates.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        lines.append(f"| {name} | {runs} | {statistics.median(values):,.0f} |")
    lines += ["", f"C over pure Python: **{c / py:.2f}x** (medians)."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "producer_crc.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
