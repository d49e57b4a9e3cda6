"""Scale: how each cost of the whole embedded stack grows with symbols and with trades/s.

Each grid point replays a synthetic whole-market tape (:func:`cryptolab.feeds.tapes.synth.
market_frames`: long-tailed rates, the busiest symbol ~20 % of the trades) in real time through a
fresh `cryptolab up`-like process (:mod:`benchmarks.scale_stack`: local Kafka broker, producer,
Spark, chDB, dashboard), sampled from outside:

- freshness p50/p99: each trade's virtual trade time -> the first store poll whose candle counts
  it (every trade counted; a trade not counted by the end of the run is late and counts as
  infinitely late in the percentiles);
- max Kafka lag (topic end offsets minus the slower query's committed offsets, every 2 s) and its
  trend over the last third;
- CPU seconds per 1,000 trades (every process of the tree, from the first frame until the lag is
  back to 0 after the last one), split by process (python, Spark JVM, Kafka JVM);
- peak memory: PSS of the whole process tree (tests/reliability/soak.py's ``tree_usage``);
- store rows and bytes per trade (``system.parts``, active parts, at the end);
- stored == published (distinct trades in the store vs trades the producer sent).

    python -m benchmarks.bench_scale                       # the default curve (7 points, ~30 min)
    python -m benchmarks.bench_scale --points all          # 5 x 3 grid
    python -m benchmarks.bench_scale --points 2000x5000 --seconds 600   # the target point
    python -m benchmarks.bench_scale --points 2000x5000 --cluster       # Spark master + 2 workers
    python -m benchmarks.scale_report build/results/bench/scale-*.json  # reports/scale.md

Writes ``build/results/bench/scale-<UTC time>.json`` (commit, date, status, command, machine,
load averages, one row per point).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.scale_measure import Sampler, freshness, lag_trend, point_row
from cryptolab.feeds.tapes.synth import market_frames, market_rates, market_symbols
from cryptolab.feeds.tapes.tape import write_frames

SYMBOL_COUNTS = (1, 10, 100, 500, 2000)
RATES = (100, 1000, 5000)
CURVE = ((1, 1000), (10, 1000), (100, 1000), (500, 1000), (2000, 1000), (2000, 100), (2000, 5000))
"""The default points: the symbol sweep at 1,000 trades/s and the rate sweep at 2,000 symbols."""
TARGET = (2000, 5000)
RESULTS = Path("build/results/bench")
TAPES = Path("build/scale/tapes")
SEED = 17


def parse_points(text: str) -> list[tuple[int, int]]:
    if text == "all":
        return [(s, r) for r in RATES for s in SYMBOL_COUNTS]
    if text == "curve":
        return list(CURVE)
    points = []
    for item in text.split(","):
        symbols, _, rate = item.strip().partition("x")
        if not (symbols.isdigit() and rate.isdigit()):
            raise SystemExit(f"--points: expected SYMBOLSxRATE like 2000x5000, got {item!r}")
        points.append((int(symbols), int(rate)))
    return points


def tape_for(symbols: int, rate: int, seconds: float) -> Path:
    """The point's tape, generated once and kept under build/scale/tapes."""
    path = TAPES / f"market-{symbols}sym-{rate}tps-{seconds:g}s-seed{SEED}.jsonl.gz"
    if not path.exists():
        names = market_symbols(symbols, SEED)
        tmp = path.with_suffix(".tmp.gz")
        started = time.monotonic()
        count = write_frames(tmp, market_frames(market_rates(names, rate), seconds, SEED))
        tmp.rename(path)
        print(f"  tape {path.name}: {count:,} trades in {time.monotonic() - started:.0f} s")
    return path


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return done.stdout.strip() + ("-dirty" if dirty else "")


def run_point(
    symbols: int,
    rate: int,
    seconds: float,
    spark_master: str | None,
    extra_pids: list[int],
    job: str = "one-query",
) -> dict[str, Any]:
    tape = tape_for(symbols, rate, seconds)
    with tempfile.TemporaryDirectory(prefix="cryptolab-scale-", ignore_cleanup_errors=True) as tmp:
        work = Path(os.environ.get("SCALE_KEEP_DIR") or tmp)  # keep the files: debugging
        work.mkdir(parents=True, exist_ok=True)
        files = {name: work / f"{name}.json" for name in ("info", "result")}
        observations = work / "observations.jsonl"
        cmd = [sys.executable, "-m", "benchmarks.scale_stack", "--tape", str(tape),
               "--data-dir", str(work / "data"), "--info", str(files["info"]),
               "--observations", str(observations), "--result", str(files["result"])]  # fmt: skip
        if spark_master:
            cmd += ["--spark-master", spark_master]
        cmd += ["--job", job]
        load_before = os.getloadavg()
        log = (work / "stack.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAB_")}
        env.update({k: v for k, v in os.environ.items() if k == "CRYPTOLAB_CACHE_DIR"})
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        sampler = Sampler(child.pid, extra_pids)
        try:
            sampler.run(child, files["info"], budget=seconds * 3 + 600)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
        text = (work / "stack.log").read_text(errors="replace")
        if child.returncode != 0 or not files["result"].exists():
            return {"symbols": symbols, "rate": rate, "seconds": seconds, "status": "failed",
                    "error": text[-3000:]}  # fmt: skip
        info = json.loads(files["info"].read_text())
        result = json.loads(files["result"].read_text())
        fresh = freshness(tape, observations, info["t0_ms"], info["e0_ms"])
        row = point_row(symbols, rate, seconds, sampler, fresh, result, info["t0_ms"] / 1000)
        row["lag_trend"] = lag_trend(sampler.lags, rate)
        row["load"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
        row["spark_master"] = spark_master or "local[*]"
        row["job"] = job
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default="curve", help="'curve', 'all' or e.g. 2000x5000,1x100")
    parser.add_argument("--seconds", type=float, default=120.0, help="tape length per point")
    parser.add_argument(
        "--cluster", action="store_true", help="Spark master + 2 workers (tests/spark_cluster.py)"
    )
    parser.add_argument("--out", type=Path, help="result file (default build/results/bench/...)")
    parser.add_argument("--render", action="store_true", help="then write reports/scale.md")
    parser.add_argument(
        "--jobs", default="one-query",
        help="one-query, two-queries (before issue 17), or both: each point with each, in turn",
    )  # fmt: skip
    args = parser.parse_args()
    points = parse_points(args.points)
    stamp = datetime.now(UTC)
    out = args.out or RESULTS / f"scale-{stamp:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    TAPES.mkdir(parents=True, exist_ok=True)
    uptime = [subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()]
    report: dict[str, Any] = {
        "commit": _commit(),
        "date": f"{stamp:%Y-%m-%d %H:%M} UTC",
        "command": " ".join(["python -m benchmarks.bench_scale", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
        "status": "running",
        "uptime": uptime,
        "points": [],
    }
    cluster = None
    if args.cluster:
        from tests.spark_cluster import StandaloneCluster

        cluster = StandaloneCluster(Path(tempfile.mkdtemp(prefix="scale-spark-")), workers=2)
        cluster.start()
    try:
        jobs = ["two-queries", "one-query"] if args.jobs == "both" else [args.jobs]
        for symbols, rate in points:
            for job in jobs:
                print(f"point {symbols} symbols x {rate} trades/s, {args.seconds:g} s, {job} ...",
                      flush=True)  # fmt: skip
                row = run_point(
                    symbols,
                    rate,
                    args.seconds,
                    cluster.url if cluster else None,
                    cluster.pids() if cluster else [],
                    job,
                )
                report["points"].append(row)
                print("  " + json.dumps({k: row.get(k) for k in SUMMARY}), flush=True)
                out.write_text(json.dumps(report, indent=1))
    finally:
        if cluster is not None:
            cluster.stop()
    failed = [p for p in report["points"] if p.get("status") != "ok"]
    report["status"] = "failed" if failed else "ok"
    uptime.append(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out} ({report['status']})")
    if args.render:
        from benchmarks.scale_report import REPORT, render

        REPORT.write_text(render(report, None, None))
        print(f"wrote {REPORT}")


SUMMARY = ("symbols", "rate", "status", "freshness_p50_s", "freshness_p99_s", "late_trades",
           "max_lag", "cpu_s_per_1000", "peak_pss_mb", "stored_equals_published")  # fmt: skip


if __name__ == "__main__":
    main()
