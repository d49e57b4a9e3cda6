"""Render one run's result rows into reports/ (``make reports``).

    .venv/bin/python -m tests.reliability.render                 # latest complete run of each suite
    .venv/bin/python -m tests.reliability.render --run RUN_ID    # that run (suite from its dir)

Suites: ``reliability`` (the rows of `make test`) -> reports/reliability.md, and ``soak`` (the
long soak of `make soak`) -> reports/soak.md. Each file comes from ONE run, whose commit and
date are stated at the top and on every row; a test that did not run in that run has no row.
Plots a row attaches are copied next to the file (reports/<suite>/).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from tests.reliability.results import REPORTS, RESULTS, complete, load_run, runs

SUITES = {"reliability": "Reliability and security report", "soak": "Soak report"}
MAKE = {"reliability": "make test", "soak": "make soak"}
TITLES = {
    "fault": "Faults injected across the pipeline",
    "fuzz": "Bad input, fuzzed",
    "soak": "Soak: `cryptolab up` under steady load",
    "security": "Security",
}
INTRO = {
    "fault": "Each run ends with the store compared to the tape's reference (tests/reference.py, "
    "stdlib json + Decimal): trades in vs trades stored, duplicates, and the time from the fault "
    "to the pipeline delivering again.",
    "fuzz": "Generated with hypothesis from a seed drawn for each run (in the row; "
    "`FUZZ_SEED=<seed>` replays it); every bad case must end in the DLQ or quarantine with a "
    "reason, with the counters matching.",
    "soak": "Loss is measured as published (every record read back from Kafka) against distinct "
    "stored trade ids, per symbol; duplicates as physical rows (no FINAL) minus distinct ids; "
    "crashes as process exits observed (`cryptolab up`'s exit code, its JVMs disappearing). "
    "Consumer lag, memory (PSS), open file handles and threads of `cryptolab up`'s whole "
    "process tree are sampled every 10 s; trends are judged on the steady part: from the first "
    "time the consumer has caught up (lag at most 5 s of trades), at least 60 s after the first "
    "trade reached Kafka, to the end of the tape (judged seconds, counted from the start of "
    "`cryptolab up`). Bounded means no upward trend: "
    "the last third of the run is no worse than the middle third (mean lag at most 2x + 5 s of "
    "trades, max memory at most +15%, open files at most +25, threads at most +10% + 10), and "
    "the lag never exceeds 60 s of trades. chDB's per-thread /proc handles are counted apart.",
    "security": "",
}
COLUMNS = {
    "fault": ["injected", "trades_in", "trades_stored", "lost", "duplicates_visible",
              "recover_seconds"],
    "fuzz": ["cases", "bad_cases", "in_dlq_or_quarantine", "counters_match", "crashes",
             "seconds"],
    "soak": ["minutes", "trades_published", "trades_stored", "trades_lost", "duplicates",
             "crashes"],
}  # fmt: skip
FILE_FIELDS = {"plot"}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):  # settings: as typed (a seed must read back exactly)
        return ", ".join(f"{k}={v}" for k, v in value.items()).replace("|", "\\|")
    return str(value).replace("|", "\\|").replace("\n", " ")


def _short(commit: str) -> str:
    sha, dirty, _ = commit.partition("+dirty")
    return sha[:12] + ("+dirty" if dirty else "")


def _table(kind: str, rows: list[dict[str, Any]]) -> list[str]:
    """Status, fixed columns per kind, then details (the other fields, or why the test did not
    pass), the settings that matter, and the row's commit and date."""
    columns = COLUMNS.get(kind, [])
    header = ["name", "status", *(c.replace("_", " ") for c in columns), "details",
              "settings", "commit", "date"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in rows:
        fields = row["fields"]
        extra = [k for k in fields if k not in columns and k not in FILE_FIELDS]
        details = "; ".join(f"{k.replace('_', ' ')}: {_cell(fields[k])}" for k in extra)
        if row["status"] != "passed":
            details = f"**{row['status'].upper()}**: {row['reason']}" + (
                f"; {details}" if details else ""
            )
        cells = [row["name"], row["status"], *(fields.get(c, "") for c in columns), details,
                 row["settings"], _short(row["commit"]), row["date"]]  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def render(suite: str, info: dict[str, Any], rows: list[dict[str, Any]], done: bool) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    dirty = info["commit"].endswith("+dirty")
    out = [
        f"# {SUITES[suite]}",
        "",
        f"Rendered by `make reports` from ONE run of `{MAKE[suite]}`: run `{info['run_id']}`, "
        f"commit `{info['commit']}`"
        + (" (uncommitted changes in the tree)" if dirty else "")
        + f", started {info['started']}, finished {info['finished'] or 'never (interrupted)'}, "
        f"`pytest {' '.join(info['pytest_args'])}`, exit status {info['exit_status']}.",
        "",
        f"Rows: {tally}. A test that did not run in this run has no row here"
        + ("" if done else "; THIS RUN IS INCOMPLETE (interrupted, or some rows never written)")
        + ".",
        "",
        f"Machine: {info['machine']}.",
        "",
    ]
    for kind, title in TITLES.items():
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        out += [f"## {title}", ""]
        if INTRO[kind]:
            out += [INTRO[kind], ""]
        out += _table(kind, mine)
        out.append("")
        plots = [(r["name"], r["fields"]["plot"]) for r in mine if r["fields"].get("plot")]
        out += [f"![{name}]({suite}/{plot})" for name, plot in plots]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def pick(root: Path, suite: str, run_id: str | None) -> Path | None:
    """The run directory to render: ``run_id``, or the latest complete run of ``suite``."""
    if run_id:
        found = [p for s in SUITES for p in runs(s, root) if p.name == run_id]
        if not found:
            raise SystemExit(f"no run {run_id!r} under {root}")
        return found[0]
    done = [p for p in runs(suite, root) if complete(p)]
    return done[-1] if done else None


def write(suite: str, run_dir: Path, reports: Path = REPORTS) -> Path:
    info, rows = load_run(run_dir)
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / f"{suite}.md"
    path.write_text(render(suite, info, rows, complete(run_dir)))
    files = reports / suite
    shutil.rmtree(files, ignore_errors=True)
    for row in rows:
        if row["fields"].get("plot"):
            files.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_dir / "files" / row["fields"]["plot"], files / row["fields"]["plot"])
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="render this run id (default: the latest complete run)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="default: %(default)s")
    parser.add_argument("--reports-dir", type=Path, default=REPORTS, help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.run:
        run_dir = pick(args.results_dir, "", args.run)
        assert run_dir is not None
        suite = run_dir.parent.name
        print(f"wrote {write(suite, run_dir, args.reports_dir)} from run {run_dir.name}")
        return 0
    wrote = 0
    for suite in SUITES:
        run_dir = pick(args.results_dir, suite, None)
        if run_dir is None:
            where = args.results_dir / suite
            print(f"{suite}: no complete run under {where} (`{MAKE[suite]}` makes one)")
            continue
        latest = runs(suite, args.results_dir)[-1]
        if latest != run_dir:
            print(f"{suite}: the latest run {latest.name} is incomplete; using {run_dir.name}")
        print(f"wrote {write(suite, run_dir, args.reports_dir)} from run {run_dir.name}")
        wrote += 1
    return 0 if wrote else 2


if __name__ == "__main__":
    sys.exit(main())
