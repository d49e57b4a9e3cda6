"""Row 4: freshness, from a trade's trade_time until a candle that counts it is queryable.

The whole embedded stack (producer thread, Kafka, Spark, chDB) runs a paced synthetic feed
(3 symbols x 46 trades/s, stamped with the wall clock). The feed starts once both streaming
queries have reported their first progress (the start-up itself is row 9). The candles table
is polled every 50 ms until EVERY trade sent is counted by a candle: no trade is left out at
the head or the tail. A trade not seen within ``DEADLINE_S`` of its trade time counts as
timed out, is reported, and fails the row.

Ours, the seed's 10 s trigger alone, and the seed's settings (10 s trigger + 200 shuffle
partitions) alternate within each round.

    .venv/bin/python -m benchmarks.bench_freshness --bootstrap HOST:PORT [--seconds 30]
        [--rounds 3] [--trigger 0.5 ...]     # also: our job with other triggers, same rounds
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from benchmarks.common import Baseline, Clause, Result, median, percentile, spread
from benchmarks.streams import CONFIGS, OURS, RATE, SEED, TRIGGER_ONLY, Config, live_source
from benchmarks.streams import bench_settings as _settings
from cryptolab.stack import Stack

DEADLINE_S = 120.0
POLL_S = 0.05


def _ready(stack: Stack) -> bool:
    job = stack.job
    return job is not None and all(q.lastProgress is not None for q in job.queries.values())


def freshness_run(bootstrap: str, seconds: float, **overrides: Any) -> dict[str, Any]:
    """Latency (s) of every trade sent, from its trade_time until a candle counts it."""
    sent: list[dict[str, Any]] = []
    seen_at: dict[tuple[str, int], list[float]] = {}  # window -> when each count was first seen
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        holder: list[Stack] = []
        source = live_source(seconds, 1.0, sent, ready=lambda: bool(holder) and _ready(holder[0]))
        stack = Stack(_settings(tmp, bootstrap, **overrides), source)
        holder.append(stack)
        stack.start(dash=False)
        assert stack.store is not None
        table = stack.store.table("candles_10s")
        try:
            while True:
                if stack.job is not None:
                    stack.job.raise_if_failed()
                if stack.status.error:
                    raise RuntimeError(stack.status.error)
                rows = stack.store.query_rows(
                    f"SELECT symbol, toUnixTimestamp64Milli(window_start), trades "  # noqa: S608
                    f"FROM {table} FINAL"
                )
                now = time.time()  # after the answer: a count is never credited too early
                for symbol, window, count in rows:
                    times = seen_at.setdefault((str(symbol), int(window)), [])
                    times.extend([now] * (int(count) - len(times)))
                if stack.status.feed_done and sent:
                    counted = sum(len(t) for t in seen_at.values())
                    if counted >= len(sent) or now > sent[-1]["T"] / 1000 + DEADLINE_S:
                        break
                time.sleep(POLL_S)
        finally:
            stack.stop()
    latencies, timed_out = [], 0
    by_window: dict[tuple[str, int], list[int]] = {}
    for trade in sent:
        by_window.setdefault((trade["s"], trade["T"] // 10_000 * 10_000), []).append(trade["T"])
    for key, trade_times in by_window.items():
        seen = seen_at.get(key, [])
        for index, trade_time in enumerate(sorted(trade_times)):
            latency = seen[index] - trade_time / 1000 if index < len(seen) else None
            if latency is None or latency > DEADLINE_S:
                timed_out += 1
            else:
                latencies.append(latency)
    overcounted = sum(max(0, len(seen_at.get(k, [])) - len(v)) for k, v in by_window.items())
    return {"latencies": latencies, "sent": len(sent), "timed_out": timed_out,
            "overcounted": overcounted + sum(len(v) for k, v in seen_at.items()
                                             if k not in by_window)}  # fmt: skip


def compare(
    bootstrap: str, configs: list[Config], rounds: int, seconds: float
) -> dict[str, list[dict[str, Any]]]:
    """Every config once per round, in an order that rotates each round."""
    runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in configs}
    for round_ in range(rounds):
        shift = round_ % len(configs)
        for config in configs[shift:] + configs[:shift]:
            run = freshness_run(bootstrap, seconds, **config.overrides)
            lat = run["latencies"]
            runs[config.name].append(
                run | {"p50": median(lat), "p99": percentile(lat, 99), "max": max(lat, default=0)}
            )
    return runs


def freshness(bootstrap: str, repeats: int = 3, seconds: float = 30) -> Result:
    runs = compare(bootstrap, list(CONFIGS), repeats, seconds)
    p50 = {name: [r["p50"] for r in rs] for name, rs in runs.items()}
    p99 = {name: [r["p99"] for r in rs] for name, rs in runs.items()}
    problems = [
        f"{name}: {r['timed_out']} of {r['sent']} trades not seen within {DEADLINE_S:g} s"
        for name, rs in runs.items()
        for r in rs
        if r["timed_out"]
    ] + [
        f"{name}: candles count {r['overcounted']} trades more than were sent"
        for name, rs in runs.items()
        for r in rs
        if r["overcounted"]
    ]
    result = Result(
        4,
        "freshness: trade_time -> candle queryable, every trade",
        "s p50",
        [round(v, 3) for v in p50[OURS.name]],
        "p50 <= 1.5 s, p99 <= 3 s, >= 5x lower p50 than baseline",
        [],
        [
            Baseline(c.name, [round(v, 3) for v in p50[c.name]], c.note)
            for c in (SEED, TRIGGER_ONLY)
        ],
        notes=f"3 symbols x {RATE:g} trades/s for {seconds:g} s per run, candles polled every "
        f"{POLL_S * 1000:g} ms until every trade sent is counted (deadline {DEADLINE_S:g} s after "
        "its trade time); the feed starts once both queries have reported a first progress",
        extra={
            "p99_s": spread([round(v, 3) for v in p99[OURS.name]]),
            "max_s": spread([round(r["max"], 3) for r in runs[OURS.name]]),
            "trades_per_run": spread([float(r["sent"]) for r in runs[OURS.name]]),
            "seed_p99_s": spread([round(v, 3) for v in p99[SEED.name]]),
            "trigger_only_p99_s": spread([round(v, 3) for v in p99[TRIGGER_ONLY.name]]),
            "timed_out_trades": sum(r["timed_out"] for rs in runs.values() for r in rs),
        },
        error="; ".join(problems) or None,
    )
    ours50, ours99 = spread(result.ours)["median"], spread(p99[OURS.name])["median"]
    ratio = result.ratio(result.baselines[0]) or 0.0
    result.clauses = [
        Clause("p50 <= 1.5 s", ours50, ours50 <= 1.5),
        Clause("p99 <= 3 s", round(ours99, 3), ours99 <= 3),
        Clause(">= 5x lower p50 than the seed", round(ratio, 2), ratio >= 5),
    ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True, help="a running Kafka, e.g. 127.0.0.1:9092")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trigger", type=float, action="append", default=[],
                        help="also our job with this trigger (s); repeatable")  # fmt: skip
    args = parser.parse_args()
    configs = [OURS] + [
        Config(f"trigger {t:g} s", {"trigger_seconds": t}, "") for t in args.trigger
    ]
    runs = compare(args.bootstrap, configs, args.rounds, args.seconds)
    print("| config | p50 s per round | p99 s per round | timed out |\n|---|---|---|---|")
    for name, rs in runs.items():
        p50s = ", ".join(f"{r['p50']:.3f}" for r in rs)
        p99s = ", ".join(f"{r['p99']:.3f}" for r in rs)
        print(f"| {name} | {p50s} | {p99s} | {sum(r['timed_out'] for r in rs)} |")


if __name__ == "__main__":
    main()
