"""Render reports/scale.md (and reports/scale/*.png) from one bench_scale result file.

    python -m benchmarks.scale_report build/results/bench/scale-20261201T120000Z.json \
        [--target build/results/bench/scale-target.json] [--cluster build/...json]

One plot per cost, log axes: the cost against symbols (one line per rate) and against trades/s
(one line per symbol count). ``--target`` adds the 10-minute run at 2,000 symbols x 5,000
trades/s and its target checks; ``--cluster`` the same point on a Spark standalone cluster.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from benchmarks.scale_measure import target_checks

REPORT = Path("reports/scale.md")
PLOTS = Path("reports/scale")
COSTS = {
    "freshness_p50_s": ("freshness p50", "s"),
    "freshness_p99_s": ("freshness p99", "s"),
    "max_lag": ("max Kafka lag", "messages"),
    "cpu_s_per_1000": ("CPU per 1,000 trades", "CPU s"),
    "peak_pss_mb": ("peak memory (PSS, whole tree)", "MB"),
    "rows_per_trade": ("store rows per trade", "rows"),
    "bytes_per_trade": ("store bytes per trade", "bytes"),
}
COLUMNS = (
    ("symbols", "symbols"), ("rate", "trades/s"), ("trades", "trades"),
    ("freshness_p50_s", "fresh p50 s"), ("freshness_p99_s", "fresh p99 s"),
    ("late_trades", "late"), ("max_lag", "max lag"), ("cpu_s_per_1000", "CPU s/1k"),
    ("peak_pss_mb", "PSS MB"), ("rows_per_trade", "rows/trade"),
    ("bytes_per_trade", "bytes/trade"), ("stored_equals_published", "stored=published"),
    ("load", "load before→after"),
)  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        return (
            f"{value:,.3f}"
            if abs(value) < 10
            else f"{value:,.1f}"
            if value < 1000
            else f"{value:,.0f}"
        )
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return " → ".join(_cell(v) for v in value)
    return str(value)


def table(points: list[dict[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]  # fmt: skip
    for point in sorted(points, key=lambda p: (p["rate"], p["symbols"])):
        if point.get("status") != "ok":
            lines.append(f"| {point['symbols']} | {point['rate']} | failed: "
                         f"{str(point.get('error', ''))[-120:]!r} |")  # fmt: skip
            continue
        lines.append("| " + " | ".join(_cell(point.get(key)) for key, _ in COLUMNS) + " |")
    return lines


def plot(points: list[dict[str, Any]], commit: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [p for p in points if p.get("status") == "ok"]
    PLOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, (title, unit) in COSTS.items():
        fig, (by_symbols, by_rate) = plt.subplots(1, 2, figsize=(10, 3.6))
        for axis, x_key, group_key, x_label, group_label in (
            (by_symbols, "symbols", "rate", "symbols", "trades/s"),
            (by_rate, "rate", "symbols", "trades/s (total)", "symbols"),
        ):
            for group in sorted({p[group_key] for p in ok}):
                series = sorted(
                    (p[x_key], p[key]) for p in ok
                    if p[group_key] == group and _finite(p.get(key))
                )  # fmt: skip
                if len(series) >= 2:
                    xs, ys = zip(*series, strict=True)
                    axis.plot(xs, ys, marker="o", label=f"{group:,} {group_label}")
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel(x_label)
            axis.set_ylabel(unit)
            axis.grid(True, which="both", alpha=0.3)
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=8)
        fig.suptitle(f"{title} (commit {commit})", fontsize=10)
        fig.tight_layout()
        path = PLOTS / f"{key}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def target_section(title: str, run: dict[str, Any]) -> list[str]:
    lines = [f"## {title}", "", f"`{run['command']}` at commit `{run['commit']}`, {run['date']}; "
             f"`uptime` before/after: {' / '.join(run.get('uptime', []))}.", ""]  # fmt: skip
    lines += table(run["points"])
    for point in run["points"]:
        if point.get("status") != "ok":
            continue
        checks = target_checks(point)
        lines += ["", f"Targets at {point['symbols']:,} symbols x {point['rate']:,} trades/s, "
                  f"{point['seconds']:g} s, Spark `{point.get('spark_master')}`:", ""]  # fmt: skip
        lines += [f"- {name}: {'met' if ok else '**missed**'}" for name, ok in checks.items()]
        trend = point.get("lag_trend") or {}
        lines.append(
            f"- lag over the last third: slope {trend.get('slope_per_s')} msgs/s, predicted rise "
            f"{trend.get('rise_over_last_third')} ({trend.get('samples')} samples); steady-state "
            "freshness (after the first tenth) p50 "
            f"{_cell(point.get('freshness_steady_p50_s'))} s, "
            f"p99 {_cell(point.get('freshness_steady_p99_s'))} s"
        )
        split = point.get("cpu_s_per_1000_by_process") or {}
        lines.append("- CPU s per 1,000 trades by process: "
                     + ", ".join(f"{k} {v}" for k, v in split.items()))  # fmt: skip
    return [*lines, ""]


def render(curve: dict[str, Any], target: dict[str, Any] | None, cluster: dict[str, Any] | None,
           notes: str = "") -> str:  # fmt: skip
    plots = plot(curve["points"], curve["commit"])
    lines = [
        "# Scale: the cost curve of the whole market",
        "",
        f"Generated by `python -m benchmarks.scale_report` from `{curve['command']}` at commit "
        f"`{curve['commit']}`, {curve['date']} (status: {curve['status']}). Machine: "
        f"{curve['machine'].get('cpus')} cores, shared with other work; `uptime` before/after: "
        f"{' / '.join(curve.get('uptime', []))}.",
        "",
        "Each point replays a synthetic whole-market tape (long-tailed symbol rates: the busiest "
        "symbol carries ~20 % of the trades, the top 10 about half) in real time through a fresh "
        "embedded stack (Kafka broker, producer, Spark `local[*]`, chDB, dashboard); see "
        "[benchmarks/bench_scale.py](../benchmarks/bench_scale.py) for how each figure is "
        "measured. Freshness counts every trade; one not counted by a candle within 60 s is "
        "late (∞). CPU is every process of the tree from the first trade until Kafka lag is back "
        "to 0 after the last.",
        "",
    ]
    lines += [*table(curve["points"]), ""]
    lines += [f"![{COSTS[p.stem][0]}](scale/{p.name})" for p in plots] + [""]
    if target is not None:
        lines += target_section("The target point, 10 minutes", target)
    if cluster is not None:
        lines += target_section(
            "The same point on a Spark standalone cluster (master + 2 workers)", cluster
        )
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("curve", type=Path)
    parser.add_argument("--target", type=Path)
    parser.add_argument("--cluster", type=Path)
    parser.add_argument("--notes", type=Path, help="hand-written analysis appended (markdown)")
    args = parser.parse_args()

    def load(path: Path | None) -> dict[str, Any] | None:
        return json.loads(path.read_text()) if path else None

    notes = args.notes.read_text() if args.notes else ""
    curve = json.loads(args.curve.read_text())
    REPORT.write_text(render(curve, load(args.target), load(args.cluster), notes))
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
