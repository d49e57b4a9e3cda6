"""Readers of the live store do not slow the pipeline (issue 18), side by side in one run:

    .venv/bin/python -m benchmarks.bench_share [--seconds 120] [--rate 460] [--readers 4]
                                               [--repeats 1]

The embedded pipeline (real Kafka broker, Spark, chDB, the store share on) takes paced trades
at ``--rate`` trades/s for ``--seconds``, twice per repeat: once alone, once with ``--readers``
other processes reading the live store through the share every second (candles, counts over
``trades FINAL``, a per-symbol price quantile: what a notebook does). Freshness is measured in
this process as in `make bench` row 4: from each trade's trade_time until a candle that counts
it is queryable (polled every 100 ms). After each run the feed is drained and every published
trade must be stored and counted by the candles. Target: freshness p99 with readers within
25 % of the run without; nothing lost; no reader query failed.

Writes build/results/bench/bench_share.json (commit, date, status, command, every run, and
min/median/max over repeats).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import Baseline, Clause, Result, machine, median, percentile
from cryptolab.bus.broker import LocalBroker
from cryptolab.feeds.source import Source
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import replay
from cryptolab.settings import load_settings
from cryptolab.stack import Stack

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
OUT = Path("build/results/bench/bench_share.json")
TOLERANCE = 1.25
POLL_S = 0.1


class Sent:
    """Trades published so far, by candle window, in order (appended by the feed thread)."""

    def __init__(self) -> None:
        self.by_window: dict[tuple[str, int], list[int]] = {}
        self.count: dict[str, int] = dict.fromkeys(SYMBOLS, 0)
        self.last_ms = 0

    def add(self, data: dict[str, Any]) -> None:
        key = (data["s"], data["T"] // 10_000 * 10_000)
        self.by_window.setdefault(key, []).append(data["T"])
        self.count[data["s"]] += 1
        self.last_ms = data["T"]


def paced_source(seconds: float, rate: float, sent: Sent) -> Source:
    """Synthetic trades stamped from the moment the feed starts, paced in real time."""

    def frames(stop: threading.Event) -> Iterator[str]:
        start_ms = int(time.time() * 1000) + 200
        per_symbol = rate / len(SYMBOLS)
        for frame in replay(synth_frames(SYMBOLS, seconds, per_symbol, 7, start_ms), 1.0):
            sent.add(orjson.loads(frame)["data"])
            yield frame

    return Source("replay", f"benchmark feed {rate:g} trades/s", frames, finite=True)


def poll(stack: Stack, sent: Sent, seen: dict[tuple[str, int], int], out: list[float]) -> None:
    """Latency of every trade a candle newly counts (trade_time -> now)."""
    assert stack.store is not None
    rows = stack.store.query_rows(
        f"SELECT symbol, toUnixTimestamp64Milli(window_start), trades "  # noqa: S608
        f"FROM {stack.store.table('candles_10s')} FINAL"
    )
    now = time.time()
    for symbol, window, count in rows:
        key = (str(symbol), int(window))
        times = sent.by_window.get(key, [])
        done = seen.get(key, 0)
        for index in range(done, min(int(count), len(times))):
            out.append(now - times[index] / 1000)
        seen[key] = max(done, int(count))


def start_readers(count: int, data_dir: Path, seconds: float, tmp: Path) -> list[Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAB_")}
    env["CRYPTOLAB_DATA_DIR"] = str(data_dir)
    readers = []
    for index in range(count):
        out = tmp / f"reader{index}.json"
        command = [sys.executable, "-m", "benchmarks.bench_share", "--reader", str(out)]
        command += ["--seconds", str(seconds)]
        readers.append((subprocess.Popen(command, env=env), out))
    return readers


def one_run(broker: str, seconds: float, rate: float, readers: int) -> dict[str, Any]:
    sent = Sent()
    seen: dict[tuple[str, int], int] = {}
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        settings = load_settings(
            data_dir=Path(tmp) / "data",
            kafka_bootstrap=broker,
            topic=f"share_{uuid.uuid4().hex[:8]}",
            dlq_topic=f"share_dlq_{uuid.uuid4().hex[:8]}",
        )
        stack = Stack(settings, paced_source(seconds, rate, sent)).start(dash=False)
        started = []
        try:
            if readers > 0:
                started = start_readers(readers, settings.data_dir, seconds, Path(tmp))
            while not stack.status.feed_done:
                stack.counters()
                poll(stack, sent, seen, latencies)
                time.sleep(POLL_S)
            while time.time() - sent.last_ms / 1000 < 300 and sum(seen.values()) < sum(
                sent.count.values()
            ):
                poll(stack, sent, seen, latencies)
                time.sleep(POLL_S)
            stack.drain()
            assert stack.store is not None
            stored = dict(
                stack.store.query_rows(
                    f"SELECT symbol, count() FROM {stack.store.table('trades')} FINAL "  # noqa: S608
                    "GROUP BY symbol"
                )
            )
            counted = dict(
                stack.store.query_rows(
                    f"SELECT symbol, sum(trades) FROM {stack.store.table('candles_10s')} "  # noqa: S608
                    "FINAL GROUP BY symbol"
                )
            )
        finally:
            reader_results = []
            for process, out in started:
                process.wait(timeout=seconds + 300)
                reader_results.append(json.loads(out.read_text()) if out.exists() else {})
            stack.stop()
    lost = sum(max(0, n - int(stored.get(s, 0))) for s, n in sent.count.items())
    miscounted = sum(abs(n - int(counted.get(s, 0))) for s, n in sent.count.items())
    body = latencies  # every trade counts, the first ones (a cold JVM) included
    lat = [q for r in reader_results for q in r.get("latencies_s", [])]
    return {
        "readers": readers,
        "trades_sent": sum(sent.count.values()),
        "trades_lost": lost,
        "candle_count_errors": miscounted,
        "freshness_samples": len(body),
        "freshness_p50_s": round(median(body), 3),
        "freshness_p99_s": round(percentile(body, 99), 3),
        "reader_queries": len(lat),
        "reader_errors": sum(int(r.get("errors", 1)) for r in reader_results),
        "reader_processes_ok": sum(1 for r in reader_results if r.get("shared")),
        "reader_query_p50_s": round(median(lat), 3) if lat else None,
        "reader_query_p99_s": round(percentile(lat, 99), 3) if lat else None,
    }


def share_row(bootstrap: str, repeats: int, seconds: float, readers: int = 4) -> Result:
    """`make bench` row 10: freshness p99 with ``readers`` live readers (ours) beside the same
    run without readers (baseline), alternating within each repeat, on the run's broker."""
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        for count in (0, readers) if repeat % 2 == 0 else (readers, 0):
            runs.append(one_run(bootstrap, seconds, 460.0, count))
    alone = [r for r in runs if r["readers"] == 0]
    shared = [r for r in runs if r["readers"] > 0]
    p99_alone = median([r["freshness_p99_s"] for r in alone])
    p99_shared = median([r["freshness_p99_s"] for r in shared])
    lost = sum(r["trades_lost"] + r["candle_count_errors"] for r in runs)
    failed_reads = sum(r["reader_errors"] for r in shared)
    answered = all(r["reader_processes_ok"] == readers for r in shared)
    every_second = all(r["reader_queries"] >= 0.8 * readers * seconds for r in shared)
    error = None
    if lost:
        error = f"{lost} trades lost or miscounted by the candles"
    elif failed_reads or not answered:
        error = f"{failed_reads} reader queries failed; all readers answered: {answered}"
    return Result(
        id=10,
        measure=f"freshness p99 at 460 trades/s with {readers} processes reading the live store "
        "every second through the share",
        unit="s",
        ours=[r["freshness_p99_s"] for r in shared],
        target=f"<= {TOLERANCE:g} x the same run without readers; 0 lost",
        clauses=[
            Clause(
                f"p99 <= {TOLERANCE:g} x without readers",
                round(p99_shared / p99_alone, 3),
                p99_shared <= TOLERANCE * p99_alone,
            ),
            Clause("readers queried every second (>= 80 %)", None, every_second),
        ],
        baselines=[Baseline("the same run without readers", [r["freshness_p99_s"] for r in alone])],
        extra={
            "seconds": seconds,
            "trades_sent": sum(r["trades_sent"] for r in runs),
            "freshness_p50_s_without": median([r["freshness_p50_s"] for r in alone]),
            "freshness_p50_s_with": median([r["freshness_p50_s"] for r in shared]),
            "reader_queries": sum(r["reader_queries"] for r in shared),
            "reader_query_p99_s": max((r["reader_query_p99_s"] or 0.0) for r in shared),
        },
        error=error,
    )


def reader(out: Path, seconds: float) -> None:
    """One reader process: what a notebook does to the live store, every second."""
    from cryptolab.store import open_store, queries

    store = open_store(load_settings(), read_only=True)
    table = store.table("trades")
    result: dict[str, Any] = {"shared": store.shared is not None, "latencies_s": [], "errors": 0}
    deadline = time.monotonic() + seconds
    tick = 0
    while time.monotonic() < deadline:
        began = time.perf_counter()
        symbol = SYMBOLS[tick % len(SYMBOLS)]
        try:
            queries.candles(store, symbol, "10s", last=90)
            store.query_rows(f"SELECT symbol, count() FROM {table} FINAL GROUP BY symbol")  # noqa: S608
            store.query_rows(
                f"SELECT quantile(0.5)(price), sum(qty) FROM {table} FINAL "  # noqa: S608
                "WHERE symbol = {s:String}",
                {"s": symbol},
            )
            result["latencies_s"].append(time.perf_counter() - began)
        except Exception as exc:
            result["errors"] += 1
            result.setdefault("first_error", str(exc)[:300])
        tick += 1
        time.sleep(max(0.0, 1.0 - (time.perf_counter() - began)))
    store.close()
    out.write_text(json.dumps(result))


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": median(values), "max": max(values)}


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
    return done.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=460.0, help="trades/s, all symbols")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--reader", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader is not None:
        reader(args.reader, args.seconds)
        return 0
    broker = LocalBroker(load_settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-share-"))))
    bootstrap = broker.start()
    runs: list[dict[str, Any]] = []
    try:
        for repeat in range(args.repeats):  # alternate, so drift on the machine hits both
            order = (0, args.readers) if repeat % 2 == 0 else (args.readers, 0)
            for readers in order:
                run = one_run(bootstrap, args.seconds, args.rate, readers)
                run["repeat"] = repeat
                runs.append(run)
                print(json.dumps(run), flush=True)
    finally:
        broker.stop()
    alone = [r for r in runs if r["readers"] == 0]
    shared = [r for r in runs if r["readers"] > 0]
    p99_alone = median([r["freshness_p99_s"] for r in alone])
    p99_shared = median([r["freshness_p99_s"] for r in shared])
    checks = {
        "freshness_p99_within_25pct": p99_shared <= TOLERANCE * p99_alone,
        "nothing_lost": all(r["trades_lost"] == 0 and r["candle_count_errors"] == 0 for r in runs),
        "readers_all_answered": all(
            r["reader_errors"] == 0 and r["reader_processes_ok"] == args.readers for r in shared
        ),
        "readers_queried_every_second": all(
            r["reader_queries"] >= 0.8 * args.readers * args.seconds for r in shared
        ),
    }
    result = {
        "row": "store share: pipeline freshness with live readers",
        "commit": commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            [sys.executable.rsplit("/", 1)[-1], "-m", "benchmarks.bench_share", *sys.argv[1:]]
        ),
        "status": "pass" if all(checks.values()) else "fail",
        "checks": checks,
        "target": f"freshness p99 with {args.readers} readers <= {TOLERANCE:g} x without; "
        "0 lost; every reader query answered",
        "rate_trades_per_s": args.rate,
        "seconds": args.seconds,
        "freshness_p99_s": {
            "without_readers": spread([r["freshness_p99_s"] for r in alone]),
            "with_readers": spread([r["freshness_p99_s"] for r in shared]),
        },
        "freshness_p50_s": {
            "without_readers": spread([r["freshness_p50_s"] for r in alone]),
            "with_readers": spread([r["freshness_p50_s"] for r in shared]),
        },
        "p99_ratio": round(p99_shared / p99_alone, 3),
        "runs": runs,
        "machine": machine(),
        "load_average": os.getloadavg(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("status", "checks", "p99_ratio")}), flush=True)
    print(f"wrote {OUT}")
    return 0 if result["status"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
