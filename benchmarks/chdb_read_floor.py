"""What one live-chart tick's store read costs in embedded chDB, taken apart (row 6's limit).

Row 6's tick reads the newest candles of one symbol (``queries.chart_rows``: 9 columns, ``FINAL``,
one thread) once a second. This times that read next to reads that each drop one part of it, on
the row's store (30 days x 3 symbols of 10 s candles, one candle row inserted before every round
as the live sink does), in interleaved rounds:

* ``system.one``: chDB's floor for any query through clickhouse-connect;
* the tick's read, through clickhouse-connect (what the dashboard does) and straight through the
  chDB connection (no clickhouse-connect: its binding, context and Native parsing);
* the same read of one column instead of nine;
* the tick's read of a copy of the newest 30 minutes in a ``Memory`` table (no parts, no files).

    .venv/bin/python -m benchmarks.chdb_read_floor [--rounds 60]

Writes ``build/results/bench/standalone/chdb_read_floor.md`` (``--out`` elsewhere; the copy
limits.md cites is ``benchmarks/results/chdb_read_floor.md``). Not a test: numbers depend on the
machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import candlegen
from benchmarks.common import STANDALONE, git_commit
from cryptolab.settings import load_settings
from cryptolab.store import Store, open_store
from cryptolab.store import queries as q
from cryptolab.store.schema import CANDLES_10S

SYMBOL = "BTCUSDT"


def reads(store: Store, since: datetime) -> dict[str, Callable[[], Any]]:
    sql, params = q._chart_sql(store, SYMBOL, "10s", since, None, q.CHART_COLUMNS)
    tick_sql = sql + "ORDER BY window_start SETTINGS max_threads = 1"
    one_column = tick_sql.replace(", ".join(q.CHART_COLUMNS), "window_start", 1)
    hot = f"`{store.database}`.`hot_candles`"
    store.command(f"CREATE TABLE {hot} AS {store.table(CANDLES_10S)} ENGINE = Memory")
    store.command(
        f"INSERT INTO {hot} SELECT * FROM {store.table(CANDLES_10S)} "  # noqa: S608 - identifiers
        "WHERE window_start >= {since:DateTime64(3, 'UTC')}",
        {"since": since - timedelta(minutes=30)},
    )
    memory_sql = tick_sql.replace(store.table(CANDLES_10S), hot).replace(" FINAL", "")
    conn = store.client._backend._handle.conn  # chDB's own connection under clickhouse-connect
    conn.query(f"USE `{store.database}`", "TabSeparated")
    raw_params = {  # chDB binds {name:Type} parameters from text
        k: v.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if isinstance(v, datetime) else str(v)
        for k, v in params.items()
    }
    return {
        "system.one (clickhouse-connect)": lambda: store.query_rows("SELECT 1 FROM system.one"),
        "tick read (clickhouse-connect)": lambda: q.chart_rows(store, SYMBOL, "10s", since),
        "tick read (chDB connection)": lambda: conn.query(
            tick_sql + " FORMAT Native", "Native", params=raw_params
        ),
        "tick read, 1 column": lambda: store.query_rows(one_column, params),
        "tick read, Memory table": lambda: store.query_rows(memory_sql, params),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--out", type=Path, default=STANDALONE / "chdb_read_floor.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cryptolab-floor-") as tmp:
        store = open_store(load_settings(data_dir=Path(tmp)))
        candlegen.fill(store, ["BTCUSDT", "ETHUSDT", "BNBUSDT"], args.days, datetime.now(UTC))
        newest = store.query_rows(
            f"SELECT max(window_start) FROM {store.table(CANDLES_10S)} "  # noqa: S608
            "WHERE symbol = {s:String}",
            {"s": SYMBOL},
        )[0][0]
        window_ms = int(newest.replace(tzinfo=UTC).timestamp() * 1000)
        since = newest.replace(tzinfo=UTC) - timedelta(seconds=10)
        timed = reads(store, since)
        samples: dict[str, list[float]] = {name: [] for name in timed}
        rng = np.random.default_rng(3)
        for round_ in range(args.rounds):
            row = candlegen.candle_table(SYMBOL, window_ms, 1, rng)  # the open candle moves
            store.insert_arrow(CANDLES_10S, row)
            names = list(timed) if round_ % 2 == 0 else list(reversed(timed))
            for name in names:
                started = time.perf_counter()
                timed[name]()
                samples[name].append((time.perf_counter() - started) * 1000)
        store.close()
    lines = [
        "# One live-chart tick's store read in embedded chDB, taken apart (row 6)",
        "",
        f"Command: `.venv/bin/python -m benchmarks.chdb_read_floor --rounds {args.rounds}`  ",
        f"Store: {args.days:g} days x 3 symbols of 10 s candles; one candle row inserted before "
        f"each of {args.rounds} rounds; reads interleaved, order alternating.  ",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, 1-min load "
        f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"commit {git_commit()}.",
        "",
        "| read | p25 ms | p50 ms |",
        "|---|---:|---:|",
    ]
    for name, values in samples.items():
        quartiles = statistics.quantiles(values, n=4)
        lines.append(f"| {name} | {quartiles[0]:.2f} | {quartiles[1]:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
