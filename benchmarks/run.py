"""`make bench`: every benchmark, each in its own process, against one local Kafka broker.

    .venv/bin/python -m benchmarks.run [--only 1,2,7] [--quick] [--repeats N]
    .venv/bin/python -m benchmarks.run --render [--run DIR]     # = make bench-report

A run writes only to its own ignored folder, ``build/results/bench/<run>/``: ``run.json`` (the
commit, command, machine, load) and one ``row-<n>.json`` per row, written when the row's
process has finished (its checks included). ``--render`` turns one run into
reports/benchmarks.{md,json}; it never mixes runs, and refuses a run that is partial
(``--only``), quick, unfinished or from a dirty checkout unless ``--draft`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import Result, git_commit, load_average, machine

RESULTS = Path("build/results/bench")
ROW_TIMEOUT_S = 2400


def _measures(quick: bool, repeats: int) -> dict[int, Callable[[str], Result]]:
    from benchmarks import (
        bench_dashboard,
        bench_freshness,
        bench_history,
        bench_kafka,
        bench_market,
        bench_micro,
        bench_pipeline,
        bench_query,
        bench_share,
        bench_store,
    )

    seconds = 20 if quick else 30
    return {
        1: lambda b: bench_kafka.producer_throughput(b, repeats, 30 if quick else 400),
        2: lambda _: bench_micro.parse_cost(repeats * 3),
        3: lambda b: bench_store.store_write_rate(b, repeats, 15 if quick else 30),
        4: lambda b: bench_freshness.freshness(b, repeats, seconds),
        5: lambda b: bench_pipeline.capacity(
            b, repeats, 50_000 if quick else 200_000, 20 if quick else 45
        ),
        6: lambda _: bench_dashboard.dashboard_update(repeats, 3 if quick else 30),
        7: lambda _: bench_query.candle_queries(repeats),
        8: lambda b: bench_pipeline.peak_rss(min(repeats, 2), seconds),
        9: lambda _: bench_pipeline.cold_start(repeats),
        10: lambda b: bench_share.share_row(b, min(repeats, 2), 60 if quick else 120),
        11: lambda _: bench_market.market_row(repeats, quick),
        12: lambda _: bench_history.history_row(repeats, 200_000 if quick else 2_000_000),
    }


def _row_command(number: int, quick: bool, repeats: int | None) -> str:
    cmd = f".venv/bin/python -m benchmarks.run --only {number}"
    return cmd + (" --quick" if quick else "") + (f" --repeats {repeats}" if repeats else "")


def _in_subprocess(
    number: int, bootstrap: str, run_dir: Path, quick: bool, repeats: int
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.run", "--one", str(number), "--bootstrap", bootstrap]
    cmd += ["--repeats", str(repeats)] + (["--quick"] if quick else [])
    started, load_before = time.perf_counter(), load_average()
    log = run_dir / f"row-{number}.log"
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=ROW_TIMEOUT_S
        )
        out, err, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        out, err, code = str(exc.stdout or ""), str(exc.stderr or ""), -1
        err += f"\nbenchmark {number} timed out after {ROW_TIMEOUT_S} s"
    log.write_text(f"$ {shlex.join(cmd)}\nexit {code}\n--- stdout\n{out}\n--- stderr\n{err}")
    row: dict[str, Any] = {"id": number, "status": "failed", "measure": f"row {number}"}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            row = dict(json.loads(line[len("RESULT ") :]))
    if "RESULT " not in out:
        row["error"] = f"the row's process exited {code} without a result: {err[-1500:]}"
    row["seconds"] = round(time.perf_counter() - started, 1)
    row["load"] = {"before": load_before, "after": load_average()}
    return row


def run(only: list[int] | None, quick: bool, repeats: int) -> Path:
    from cryptolab.bus.broker import LocalBroker
    from cryptolab.settings import load_settings

    wanted = only or sorted(_measures(quick, repeats))
    commit = git_commit()
    started = datetime.now(UTC)
    run_dir = RESULTS / f"{started:%Y%m%dT%H%M%SZ}-{commit.replace('+', '-')}"
    run_dir.mkdir(parents=True)
    meta: dict[str, Any] = {
        "run": run_dir.name,
        "commit": commit,
        "command": shlex.join(["python", "-m", "benchmarks.run", *sys.argv[1:]]),
        "rows_wanted": wanted,
        "partial": bool(only),
        "quick": quick,
        "repeats": repeats,
        "started": started.isoformat(timespec="seconds"),
        "load_start": list(_loads()),
        "machine": machine(),
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))
    print(f"run {run_dir} at {commit}, load {meta['load_start']}", flush=True)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        broker = LocalBroker(load_settings(data_dir=Path(tmp)))
        bootstrap = broker.start()
        try:
            for number in wanted:
                print(f"benchmark {number} ...", flush=True)
                row = _in_subprocess(number, bootstrap, run_dir, quick, repeats)
                row |= {
                    "commit": commit,
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "command": _row_command(number, quick, None if repeats == 3 else repeats),
                }
                (run_dir / f"row-{number}.json").write_text(json.dumps(row, indent=2))
                ours = row.get("ours", {}).get("median")
                print(f"  {row['status']}: {ours} {row.get('unit', '')} {row.get('error') or ''}")
        finally:
            broker.stop()
    meta |= {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_end": list(_loads()),
        "commit_end": git_commit(),
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))
    print(f"done: {run_dir} (render it with `make bench-report`)")
    return run_dir


def _loads() -> tuple[float, ...]:
    import os

    return tuple(round(x, 2) for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated row numbers (a partial run)")
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per row")
    parser.add_argument("--render", action="store_true", help="render one run into reports/")
    parser.add_argument("--run", type=Path, help="with --render: the run folder (default: latest)")
    parser.add_argument(
        "--draft", action="store_true", help="with --render: render any run, marked as a draft"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.one:
        result = _measures(args.quick, args.repeats)[args.one](args.bootstrap or "")
        print("RESULT " + json.dumps(result.as_dict()), flush=True)
        return
    if args.render:
        from benchmarks.report import render

        print(render(args.run, RESULTS, args.draft))
        return
    only = [int(n) for n in args.only.split(",")] if args.only else None
    run(only, args.quick, args.repeats)


if __name__ == "__main__":
    main()
