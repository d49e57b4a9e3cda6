"""Row 3: store write rate at the micro-batch sizes the stream really writes, and how many
INSERTs per second per table the stream sends.

First a real streaming run (Kafka -> Spark -> chDB, default settings) at a Binance-like rate
(3 symbols x 46 trades/s), then at 10x that: every INSERT the sink sends is recorded at the
ClickHouse client (time, table, rows), and the block numbers ClickHouse allocated (one per
INSERT and partition) check that count independently. Then, in a fresh store, INSERTs of the
recorded median micro-batch sizes alternate with the original design's one INSERT per row.
"""

from __future__ import annotations

import bisect
import re
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmarks.common import Baseline, Clause, Result, interleaved, median, spread
from benchmarks.streams import RATE, SYMBOLS, paced_frames, publish_paced, running_job
from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets
from cryptolab.settings import load_settings
from cryptolab.store import Store, open_store
from cryptolab.store.schema import TRADES

TS = pa.timestamp("ms", tz="UTC")
WINDOW_S = 10  # the INSERT rate is checked over every 10 s window
KEEPS_UP = 5  # a median micro-batch above 5 triggers' worth of trades: the job fell behind
SINGLE_ROWS = 100  # rows inserted one per INSERT per round (the baseline)
SINGLE_NOTE = f"the original design: {SINGLE_ROWS} rows, one INSERT each, per round, same store"


def _trades(first_id: int, n: int) -> pa.Table:
    ids = range(first_id, first_id + n)
    return pa.table(
        {
            "symbol": ["BTCUSDT"] * n,
            "trade_id": pa.array(ids, pa.int64()),
            "price": pa.array([Decimal("97000.01")] * n, pa.decimal128(18, 8)),
            "qty": pa.array([Decimal("0.001")] * n, pa.decimal128(18, 8)),
            "trade_time": pa.array(ids, TS),
            "event_time": pa.array(ids, TS),
            "is_buyer_maker": [True] * n,
            "ingest_time": pa.array(ids, TS),
        }
    )


class InsertLog:
    """Records every INSERT the store's ClickHouse client sends: (monotonic s, table, rows)."""

    def __init__(self, store: Store) -> None:
        self.inserts: list[tuple[float, str, int]] = []
        client = store.client
        original = client.insert_arrow

        def insert_arrow(table: str, arrow_table: pa.Table, *args: Any, **kwargs: Any) -> Any:
            self.inserts.append((time.monotonic(), table, arrow_table.num_rows))
            return original(table, arrow_table, *args, **kwargs)

        client.insert_arrow = insert_arrow
        command = client.command

        def logged_command(sql: str, *args: Any, **kwargs: Any) -> Any:
            target = _INSERT_INTO.match(sql)  # INSERT ... SELECT (the market rollups)
            if target:
                self.inserts.append((time.monotonic(), target.group(1), 0))
            return command(sql, *args, **kwargs)

        client.command = logged_command


_INSERT_INTO = re.compile(r"\s*INSERT\s+INTO\s+(`[^`]+`\.`[^`]+`)", re.IGNORECASE)
FED_BY = {"market_10s": "candles_10s", "market_latest": "candles_10s"}
"""Tables a materialized view fills on every INSERT into another (one block per INSERT there)."""


def _blocks(store: Store) -> dict[str, tuple[int, int]]:
    """Per table: the block numbers ClickHouse allocated (one per INSERT and partition written;
    the highest is kept through merges) and the partitions."""
    rows = store.query_rows(
        "SELECT table, max(max_block_number), uniqExact(partition_id) FROM system.parts "
        "WHERE database = {db:String} GROUP BY table",
        {"db": store.database},
    )
    return {f"`{store.database}`.`{table}`": (int(b), int(p)) for table, b, p in rows}


def stream_inserts(bootstrap: str, seconds: float) -> dict[str, Any]:
    """Run the job at 1x then 10x a Binance-like rate; what the sink inserted, per phase."""
    phases: dict[str, list[tuple[float, str, int]]] = {}
    with running_job(bootstrap, start=False) as (job, store, settings):
        blocks_before = _blocks(store)  # opening the store writes a bookmark (market_state)
        log = InsertLog(store)
        started = time.monotonic()
        job.start()
        producer = TradeProducer(settings, bootstrap)
        for name, factor in (("1x", 1), ("10x", 10)):
            rate = RATE * len(SYMBOLS) * factor
            first = len(log.inserts)
            publish_paced(producer, paced_frames(rate, seconds, seed=factor), rate)
            target = end_offsets(bootstrap, settings.topic)
            deadline = time.monotonic() + 120
            while not job.caught_up(target) and time.monotonic() < deadline:
                time.sleep(0.2)
            phases[name] = log.inserts[first:]
        run_seconds = time.monotonic() - started
        producer.close()
        blocks = _blocks(store)
        sent = sum(end_offsets(bootstrap, settings.topic).values())
        stored = store.query_rows(f"SELECT count() FROM {store.table(TRADES)} FINAL")[0][0]  # noqa: S608
    return {
        "phases": phases,
        "blocks": blocks,
        "blocks_before": blocks_before,
        "inserts": log.inserts,
        "run_seconds": run_seconds,
        "trigger_s": settings.trigger_seconds,
        "sent": sent,
        "stored": int(stored),
    }


def insert_rates(
    inserts: list[tuple[float, str, int]], run_seconds: float
) -> dict[str, dict[str, float]]:
    """Per table: INSERTs, INSERTs per second of the job's run (start to the last phase's end),
    and the most in any 1 s and any 10 s window (these also count the trigger's jitter: a
    micro-batch that overran starts the next one at once)."""
    by_table: dict[str, list[float]] = defaultdict(list)
    for at, table, _ in inserts:
        by_table[table].append(at)
    out: dict[str, dict[str, float]] = {}
    for table, times in by_table.items():
        times.sort()

        def most(width: float, times: list[float] = times) -> int:
            """The most INSERTs in any window of ``width`` s (each starting at an INSERT)."""
            return max(bisect.bisect_left(times, t + width) - i for i, t in enumerate(times))

        out[table] = {
            "inserts": len(times),
            "per_s": round(len(times) / run_seconds, 3),
            "max_in_1s": most(1.0),
            "max_per_s_over_10s": round(most(WINDOW_S) / WINDOW_S, 2),
        }
    return out


def _sizes(inserts: list[tuple[float, str, int]], table: str, skip_first: bool) -> list[int]:
    """Rows per INSERT into ``table``; ``skip_first``: without the job's first micro-batch,
    which carries what was published while the job started (unless it is the only one)."""
    sizes = [rows for _, name, rows in inserts if name.endswith(f"`{table}`")]
    return sizes[1:] if skip_first and len(sizes) > 1 else sizes


def store_write_rate(bootstrap: str, repeats: int = 3, seconds: float = 30) -> Result:
    run = stream_inserts(bootstrap, seconds)
    rates = insert_rates(run["inserts"], run["run_seconds"])
    sizes = {name: _sizes(ins, TRADES, name == "1x") for name, ins in run["phases"].items()}
    batch_1x = max(1, round(median([float(s) for s in sizes["1x"]])))
    batch_10x = max(1, round(median([float(s) for s in sizes["10x"]])))
    ours: list[float] = []
    tenfold: list[float] = []
    single: list[float] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        store = open_store(load_settings(data_dir=Path(tmp)))
        next_id = [0]

        def insert(n: int, each: int, out: list[float]) -> None:
            started = time.perf_counter()
            for _ in range(n // each):
                token = {"insert_deduplication_token": f"bench:{next_id[0]}"}
                store.insert_arrow(TRADES, _trades(next_id[0], each), settings=token)
                next_id[0] += each
            out.append(n / (time.perf_counter() - started))

        interleaved(
            [
                lambda: insert(batch_1x * 5, batch_1x, ours),
                lambda: insert(batch_10x * 5, batch_10x, tenfold),
                lambda: insert(SINGLE_ROWS, 1, single),
            ],
            repeats,
        )
        written = store.query_rows(f"SELECT count() FROM {store.table(TRADES)}")[0][0]  # noqa: S608
        store.close()
    errors = []
    if run["stored"] != run["sent"]:
        errors.append(f"the stream stored {run['stored']:,} of {run['sent']:,} trades")
    if int(written) != next_id[0]:
        errors.append(f"the write test stored {written:,} of {next_id[0]:,} rows")
    trigger_s = float(run["trigger_s"])
    real_time = RATE * len(SYMBOLS) * trigger_s  # what one trigger holds when the job keeps up
    if batch_1x > KEEPS_UP * real_time:
        errors.append(
            f"the stream did not keep up in real time: its micro-batches held {batch_1x:,} "
            f"trades (~{batch_1x / real_time * trigger_s:.0f} s of the feed, not ~{trigger_s:g} "
            "s), so the sizes measured are not the ones it writes at this rate (machine too "
            "loaded)"
        )
    for table, (blocks, partitions) in run["blocks"].items():
        blocks -= run["blocks_before"].get(table, (0, 0))[0]  # written before the log started
        name = table.rsplit(".", 1)[-1].strip("`")
        source = table.replace(f"`{name}`", f"`{FED_BY[name]}`") if name in FED_BY else table
        counted = rates.get(source, {}).get("inserts", 0)
        if blocks > counted + partitions - 1:  # an INSERT over two partitions takes two blocks
            errors.append(f"{table}: ClickHouse allocated {blocks} blocks, {counted} INSERTs seen")
    worst = max((r["per_s"] for r in rates.values()), default=0.0)
    result = Result(
        3,
        f"store write rate at the stream's micro-batch size ({batch_1x} rows at 3 x 46 trades/s)",
        "rows/s",
        [round(v) for v in ours],
        ">= 500x baseline; <= 1 INSERT/s/table",
        [],
        [Baseline("one INSERT per row", [round(v) for v in single], SINGLE_NOTE)],
        notes=f"a streaming run (default settings, {seconds:g} s at {RATE * 3:g} trades/s, then "
        f"{seconds:g} s at 10x) recorded every INSERT the sink sent: median trades micro-batch "
        f"{batch_1x} rows at 1x (without the job's first, which holds what was published while "
        f"it started) and {batch_10x} at 10x; then 5 INSERTs of each size per round "
        "in a fresh store (with the sink's dedup token) alternate with single-row INSERTs. "
        "INSERT rate per table = its INSERTs / the seconds the job ran, checked on every table "
        "the stream wrote; the block numbers ClickHouse allocated (system.parts) check "
        "that count",
        extra={
            "rows_per_s_at_10x_batch": spread([round(v) for v in tenfold]),
            "trades_batch_rows_1x": spread([float(s) for s in sizes["1x"]]) | {"runs": []},
            "trades_batch_rows_10x": spread([float(s) for s in sizes["10x"]]) | {"runs": []},
            "insert_rate_per_table": rates,
            "clickhouse_blocks_partitions": run["blocks"],
        },
        error="; ".join(errors) or None,
    )
    ratio = result.ratio(result.baselines[0]) or 0.0
    result.clauses = [
        Clause(">= 500x baseline", round(ratio, 1), ratio >= 500),
        Clause("<= 1 INSERT/s/table (the busiest table)", worst, worst <= 1.0),
    ]
    return result
