"""Benchmark row: `history load` of an already-downloaded day vs the tape path, side by side.

    python -m benchmarks.bench_history [--trades 2000000] [--rounds 3]

One day of spot trades in Binance's published format (a ``SYM-trades-2025-01-01.zip`` with its
``.CHECKSUM``, microsecond times) is made once and served by a local HTTP server; a first
``history load`` downloads it into the cache. Then, in interleaved rounds, each into a fresh
database of the embedded store:

- **ours**: :func:`cryptolab.batch.history.load_history` from the cache: checksum verified
  again, ClickHouse reads the CSV (unzipped through a pipe), partitions attached, 10 s candles
  written;
- **tape path**: ``tape import`` of the same zip (:func:`cryptolab.feeds.tapes.vision.import_tape`)
  and its replay into the store without Kafka and Spark (:func:`cryptolab.batch.load.load_tape`,
  which also writes the candles).

Both must store every trade and candles covering every trade, or the row fails. Trades/s =
trades / wall seconds; min / median / max over the rounds. Writes
``build/results/bench/bench_history.json`` (with commit, date, status and command).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.common import Baseline, Clause, Result, interleaved
from cryptolab.batch.download import Archive
from cryptolab.batch.history import load_history
from cryptolab.batch.load import load_tape
from cryptolab.feeds.tapes.vision import import_tape, trades_file
from cryptolab.settings import load_settings
from cryptolab.store import Store, open_store, queries

SYMBOL = "BTCUSDT"
DAY = date(2025, 1, 1)
TARGET = 1_000_000.0
OUT = Path("build/results/bench/bench_history.json")
DATA = Path("build/bench-data/history")


def make_day(store: Store, trades: int, folder: Path) -> Path:
    """A published-format zip of ``trades`` trades on DAY (µs times, ids consecutive), made by
    ClickHouse, cached under ``folder`` between runs; its .CHECKSUM next to it."""
    path = folder / trades_file(SYMBOL, str(DAY))
    if path.is_file() and path.with_name(path.name + ".CHECKSUM").is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    csv = path.with_suffix(".csv")
    start_us = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
    store.command(
        "INSERT INTO FUNCTION file({path:String}, 'CustomSeparated', "
        "'id UInt64, price Decimal(18, 8), qty Decimal(18, 8), quote Decimal(18, 8), time UInt64, "
        "m String, b String') "
        "SELECT 4100000000 + number, "
        "  toDecimal64(9300000 + cityHash64(number) % 400000, 8) / 100 AS p, "
        "  toDecimal64(cityHash64(number, 1) % 250000 + 1, 8) / 100000 AS q, "
        "  toDecimal64(toDecimal128(p, 8) * toDecimal128(q, 8), 8), "
        "  {start:UInt64} + intDiv(number * 86400000000, {n:UInt64}), "
        "  if(cityHash64(number, 2) % 2 = 1, 'True', 'False'), 'True' "
        "FROM numbers({n:UInt64}) SETTINGS engine_file_truncate_on_insert = 1, "
        "format_custom_escaping_rule = 'Raw', format_custom_field_delimiter = ',', "
        "output_format_decimal_trailing_zeros = 1",
        {"path": str(csv.resolve()), "start": start_us, "n": trades},
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        archive.write(csv, csv.name)
    csv.unlink()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    return path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def serve(folder: Path) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def fresh_store(data_dir: Path, name: str) -> Store:
    return open_store(load_settings(data_dir=data_dir, clickhouse_database=name))


def check(store: Store, trades: int, what: str) -> None:
    """Every trade stored, and candles covering every trade (else the row fails)."""
    stored = queries.trade_counts(store).get(SYMBOL, 0)
    in_candles = queries.candle_trade_counts(store).get(SYMBOL, 0)
    if stored != trades or in_candles != trades:
        raise AssertionError(
            f"{what}: {stored} trades stored, {in_candles} in candles, want {trades}"
        )


def spread(values: list[float]) -> dict[str, Any]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "runs": values,
    }


def git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain") else "")


def run(trades: int, rounds: int, work: Path) -> dict[str, Any]:
    data_dir = work / "data"
    gen = fresh_store(data_dir, "bench_gen")
    published = DATA / f"{trades}"
    make_day(gen, trades, published)
    server = serve(published)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    cache = work / "cache"
    warm = fresh_store(data_dir, "bench_warm")
    first = load_history(warm, Archive(base, cache), [SYMBOL], DAY, DAY)
    server.shutdown()  # from here on, the cache only
    if not first.ok or first.trades != trades:
        raise AssertionError(f"warm-up load: {first.describe()}")
    zipped = Archive(base, cache).local(trades_file(SYMBOL, str(DAY)))
    counter = iter(range(10_000))

    def ours() -> None:
        store = fresh_store(data_dir, f"bench_ours_{next(counter)}")
        report = load_history(store, Archive(base, cache), [SYMBOL], DAY, DAY)
        if report.trades != trades or not report.ok:
            raise AssertionError(f"history load: {report.describe()}")
        ours_checked.append(store)

    def tape_path() -> None:
        store = fresh_store(data_dir, f"bench_tape_{next(counter)}")
        tape = work / "day.jsonl.gz"
        import_tape(zipped, SYMBOL, tape)
        load_tape(store, tape)
        tape_checked.append(store)

    ours_checked: list[Store] = []
    tape_checked: list[Store] = []
    load_before = os.getloadavg()[0]
    cpu: list[list[float]] = [[], []]
    times = interleaved([cpu_time(ours, cpu[0]), cpu_time(tape_path, cpu[1])], rounds)
    for store in ours_checked:
        check(store, trades, "history load")
    for store in tape_checked:
        check(store, trades, "tape path")
    ours_rates = [trades / t for t in times[0]]
    tape_rates = [trades / t for t in times[1]]
    ratio = statistics.median(ours_rates) / statistics.median(tape_rates)
    met = statistics.median(ours_rates) >= TARGET
    return {
        "measure": "history load of a downloaded day into the embedded store (trades/s)",
        "unit": "trades/s",
        "status": "met" if met else "missed",
        "error": None,
        "ours": spread(ours_rates),
        "baselines": [
            {
                "name": "tape import + replay (batch load, no Kafka/Spark)",
                **spread(tape_rates),
                "ratio": ratio,
            }
        ],
        "target": f">= {TARGET:,.0f} trades/s (median)",
        "clauses": [
            {"text": ">= 1,000,000 trades/s", "value": statistics.median(ours_rates), "met": met}
        ],
        "extra": {
            "trades": trades,
            "rounds": rounds,
            "zip_bytes": zipped.stat().st_size,
            "seconds_ours": times[0],
            "seconds_tape_path": times[1],
            "cpu_seconds_ours": cpu[0],
            "cpu_seconds_tape_path": cpu[1],
            "trades_per_cpu_second_ours": trades / statistics.median(cpu[0]),
            "trades_per_cpu_second_tape_path": trades / statistics.median(cpu[1]),
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        },
    }


def cpu_time(fn: Callable[[], Any], out: list[float]) -> Callable[[], None]:
    """``fn``, recording the CPU seconds this process (chDB's threads included) spent in it."""

    def timed() -> None:
        before = resource.getrusage(resource.RUSAGE_SELF)
        fn()
        after = resource.getrusage(resource.RUSAGE_SELF)
        out.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

    return timed


def history_row(rounds: int, trades: int) -> Result:
    """`make bench` row 12: `history load` of one downloaded day (ours) beside the tape path
    (baseline), interleaved rounds; a failed check (a trade missing) fails the row."""
    work = Path(tempfile.mkdtemp(prefix="cryptolab-bench-history-"))
    try:
        row = run(trades, rounds, work)
    except AssertionError as exc:
        return Result(12, "history load", "trades/s", [], f">= {TARGET:,.0f} trades/s", [],
                      error=str(exc))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    extra = row["extra"]
    ours = [trades / t for t in extra["seconds_ours"]]
    median_rate = statistics.median(ours)
    return Result(
        id=12,
        measure=f"history load of a downloaded day ({trades:,} trades, Binance's zip) into the "
        "embedded store",
        unit="trades/s",
        ours=ours,
        target=row["target"],
        clauses=[Clause(f">= {TARGET:,.0f} trades/s", median_rate, median_rate >= TARGET)],
        baselines=[
            Baseline(
                "tape import + replay (batch load, no Kafka/Spark)",
                [trades / t for t in extra["seconds_tape_path"]],
            )
        ],
        extra=extra,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=2_000_000, help="trades in the day")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started, commit = datetime.now(UTC), git_commit()  # the code measured, before it runs
    work = Path(tempfile.mkdtemp(prefix="cryptolab-bench-history-"))
    try:
        row = run(args.trades, args.rounds, work)
    except AssertionError as exc:
        row = {"measure": "history load", "status": "failed", "error": str(exc)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    row.update(
        commit=commit,
        date=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        command=" ".join(["python -m benchmarks.bench_history", *(argv or sys.argv[1:])]),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=1) + "\n")
    if row["status"] == "failed":
        print(f"history load benchmark FAILED: {row['error']}", file=sys.stderr)
        return 1
    ours, base = row["ours"], row["baselines"][0]
    print(
        f"history load {ours['min']:,.0f} / {ours['median']:,.0f} / {ours['max']:,.0f} trades/s "
        f"(min/median/max) vs tape path {base['min']:,.0f} / {base['median']:,.0f} / "
        f"{base['max']:,.0f}: {base['ratio']:.1f}x; target {row['target']}: {row['status']} "
        f"({row['extra']['trades']:,} trades, load average {row['extra']['load_average_1m']}; "
        f"{row['extra']['trades_per_cpu_second_ours']:,.0f} vs "
        f"{row['extra']['trades_per_cpu_second_tape_path']:,.0f} trades per CPU second)"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
