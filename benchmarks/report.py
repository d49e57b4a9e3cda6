"""Render one benchmark run (``build/results/bench/<run>/``) into reports/benchmarks.{md,json}.

Only one run's rows are ever rendered, never a mix. A run is publishable when it finished,
ran every row (no ``--only``), was not ``--quick`` and was measured on a clean checkout that
did not change during the run; ``--draft`` renders any run, marked as a draft.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptolab.errors import CryptolabError

REPORTS = Path("reports")
LIMITS = Path(__file__).resolve().parent / "limits.md"
"""Hand-written: what limits the targets not met (embedded at the end of the report)."""


def problems(meta: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Why a run cannot be published as reports/benchmarks.md (empty: it can)."""
    found = []
    if not meta.get("finished"):
        found.append("it did not finish")
    if meta.get("partial"):
        found.append(f"it ran only rows {meta.get('rows_wanted')} (--only)")
    if meta.get("quick"):
        found.append("it was a --quick run")
    if "dirty" in str(meta.get("commit")) or meta.get("commit") != meta.get("commit_end"):
        found.append(f"the checkout was dirty or changed ({meta.get('commit')} -> "
                     f"{meta.get('commit_end')})")  # fmt: skip
    missing = set(meta.get("rows_wanted", [])) - {r["id"] for r in rows}
    if missing:
        found.append(f"rows {sorted(missing)} have no result")
    return found


def _load(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    meta = json.loads((run_dir / "run.json").read_text())
    rows = [json.loads(p.read_text()) for p in run_dir.glob("row-*.json")]
    return meta, sorted(rows, key=lambda r: int(r["id"]))


def pick(run: Path | None, root: Path, draft: bool) -> Path:
    """``run``, or the newest run under ``root`` that can be published (any newest if draft)."""
    if run is not None:
        return run
    runs = sorted((p for p in root.glob("*/run.json")), reverse=True)
    for path in runs:
        if draft or not problems(*_load(path.parent)):
            return path.parent
    raise CryptolabError(
        f"no publishable benchmark run under {root}: run `make bench` on a clean checkout "
        "(or pass --run DIR --draft to render another one as a draft)"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict) and "median" in value:
        return _stat(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _stat(stat: dict[str, Any]) -> str:
    if stat.get("median") is None:
        return "—"
    if len(stat.get("runs", [])) <= 1:
        return _fmt(stat["median"])
    return f"{_fmt(stat['median'])} ({_fmt(stat['min'])}–{_fmt(stat['max'])})"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| # | measure | ours: median (min–max) | baseline: median (min–max) | ratio | target "
        "| status |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        bases = row.get("baselines") or [{}]
        first = bases[0]
        ratio = f"{first['ratio']:.2f}x" if first.get("ratio") else "—"
        status = row["status"] if row["status"] == "met" else f"**{row['status']}**"
        lines.append(
            f"| {row['id']} | {row.get('measure', '?')} ({row.get('unit', '')}) "
            f"| {_stat(row.get('ours', {}))} | {_stat(first)} | {ratio} "
            f"| {row.get('target', '')} | {status} |"
        )
        for base in bases[1:]:
            ratio = f"{base['ratio']:.2f}x" if base.get("ratio") else "—"
            lines.append(f"| | vs {base['name']} | | {_stat(base)} | {ratio} | | |")
    return lines


def _notes(row: dict[str, Any]) -> str:
    notes = str(row.get("notes", "")).rstrip()
    parts = [f"- **{row['id']}** {notes}" + ("" if notes.endswith(".") else ".")]
    if row.get("error"):
        parts.append(f" **Failed: {row['error']}**")
    for base in row.get("baselines", []):
        parts.append(f" Baseline *{base['name']}*: {base.get('note', '')}.")
    clauses = "; ".join(
        f"{c['text']}: {_fmt(c['value'])} {'met' if c['met'] else '**missed**'}"
        for c in row.get("clauses", [])
    )
    if clauses:
        parts.append(f" Target clauses: {clauses}.")
    extra = ", ".join(f"{k} = {_fmt(v)}" for k, v in row.get("extra", {}).items())
    if extra:
        parts.append(f" ({extra})")
    load = row.get("load", {})
    parts.append(
        f" Took {row.get('seconds', '?')} s, load {load.get('before')} -> {load.get('after')}; "
        f"`{row.get('command', '')}`."
    )
    return "".join(parts)


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]], issues: list[str]) -> str:
    met = sum(r["status"] == "met" for r in rows)
    lines = ["# cryptolab benchmarks", ""]
    if issues:
        lines += [f"**DRAFT, not a publishable run: {'; '.join(issues)}.**", ""]
    lines += [
        f"One run of `{meta['command']}` (`make bench`), run `{meta['run']}` at commit "
        f"`{meta['commit']}`, {meta['started']} – {meta.get('finished', '?')} UTC; rendered by "
        "`python -m benchmarks.run --render` (`make bench-report`). "
        f"**{met} of {len(rows)} targets met.**",
        "",
        f"Each row repeats {meta['repeats']} times, ours and its baselines alternating within "
        "each round; the table gives the median of the repeats and their range, the ratio is "
        "of the medians. A row whose own checks failed (trades lost, timed out) is `failed` "
        "whatever its numbers.",
        "",
        f"Load average (1/5/15 min, 2 cores shared with other work) at the start "
        f"{meta.get('load_start')}, at the end {meta.get('load_end')}; each row's own is in its "
        "notes. Machine: " + ", ".join(f"{k} {v}" for k, v in meta["machine"].items()),
        "",
        *_table(rows),
        "",
        "How each measure works: [benchmarks/README.md](../benchmarks/README.md).",
        "",
        "## Notes per measure",
        "",
        *[_notes(r) for r in rows],
    ]
    if LIMITS.exists():
        lines += ["", LIMITS.read_text().strip()]
    return "\n".join(lines) + "\n"


def render(run: Path | None, root: Path, draft: bool) -> str:
    run_dir = pick(run, root, draft)
    meta, rows = _load(run_dir)
    issues = problems(meta, rows)
    if issues and not draft:
        raise CryptolabError(
            f"benchmark run {run_dir} cannot be published: {'; '.join(issues)} "
            "(--draft renders it anyway, marked as a draft)"
        )
    REPORTS.mkdir(exist_ok=True)
    keys = ("run", "commit", "command", "repeats", "started", "finished", "load_start")
    document = {k: meta.get(k) for k in (*keys, "load_end", "machine")}
    document |= {"draft": issues, "rows": rows}
    (REPORTS / "benchmarks.json").write_text(json.dumps(document, indent=2) + "\n")
    text = markdown(meta, rows, issues)
    (REPORTS / "benchmarks.md").write_text(text)
    return text
