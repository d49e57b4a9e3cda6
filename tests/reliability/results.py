"""What the reliability suite measured: one directory per pytest run, never a tracked file.

    build/results/<suite>/<run id>/      (build/ is git-ignored; suite: reliability or soak)
        run.json          the run: commit (+dirty), start and end, pytest arguments, exit status
        rows/<slug>.json  one row per test marked ``@pytest.mark.row(kind, name, **settings)``
        files/            plots and samples a test attaches (after its assertions)

A row's life (the hooks are in tests/reliability/rows.py, loaded by tests/conftest.py):

- the test is marked ``@pytest.mark.row("fuzz", "feed frames -> producer -> Kafka", ...)``;
  keyword arguments of the marker are the settings that matter for the row (reconcile,
  watermark, ...); ``{param}`` in the name is filled from the test's parameters;
- it may call :func:`setting` for settings known only at run time (a fuzz seed): those stay in
  the row even if the test fails;
- it calls :func:`record` once its assertions passed, with the measured fields;
- when the test ends, the row is written with its status (passed, failed, skipped), the reason
  when it did not pass, the run's commit and the date. A test that fails before ``record`` still
  leaves a row (status failed, the assertion as the reason); a test that passes without calling
  ``record`` is turned into a failure.

``make reports`` (``python -m tests.reliability.render``) turns one run into
``reports/reliability.md``; pytest never writes into ``reports/``.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
RESULTS = ROOT / "build" / "results"

Kind = Literal["fault", "fuzz", "soak", "security"]


def commit() -> str:
    """``git rev-parse HEAD`` of this checkout, plus ``+dirty`` when ``git status`` is not
    clean (untracked files count); ``unknown`` outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True, timeout=30).stdout.strip()  # fmt: skip
        status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                                text=True, check=True, timeout=60).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if status.strip() else "")


def utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class Run:
    """One pytest session's results directory."""

    suite: str
    dir: Path
    info: dict[str, Any]

    @classmethod
    def start(cls, root: Path, suite: str, args: list[str], expected: list[str]) -> Run:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        sha = commit()
        run_dir = root / suite / f"{stamp}-{sha[:7]}"
        n = 1
        while run_dir.exists():  # two sessions in one second
            n += 1
            run_dir = root / suite / f"{stamp}-{sha[:7]}-{n}"
        (run_dir / "rows").mkdir(parents=True)
        info = {
            "run_id": run_dir.name,
            "suite": suite,
            "commit": sha,
            "started": utc_now(),
            "finished": None,
            "exit_status": None,
            "pytest_args": args,
            "expected_rows": expected,
            "machine": f"{platform.machine()}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}",
        }
        run = cls(suite, run_dir, info)
        run.save()
        return run

    def save(self) -> None:
        (self.dir / "run.json").write_text(json.dumps(self.info, indent=1) + "\n")

    def finish(self, exit_status: int) -> None:
        self.info["finished"] = utc_now()
        self.info["exit_status"] = exit_status
        self.save()

    @property
    def files(self) -> Path:
        path = self.dir / "files"
        path.mkdir(exist_ok=True)
        return path

    def write_row(self, row: dict[str, Any]) -> Path:
        path = self.dir / "rows" / f"{slug(row['kind'] + '-' + row['name'])}.json"
        path.write_text(json.dumps(row, indent=1, default=str) + "\n")
        return path


@dataclass
class Pending:
    """The rows the running test owes: its marker's (kind, name) pairs, settings, fields."""

    node: str
    rows: dict[tuple[str, str], dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    recorded: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


_run: Run | None = None
_pending: Pending | None = None


def current_run() -> Run | None:
    return _run


def set_run(run: Run | None) -> None:
    global _run
    _run = run


def set_pending(pending: Pending | None) -> None:
    global _pending
    _pending = pending


def _owed() -> Pending:
    if _pending is None:
        raise RuntimeError(
            "setting() in a test without a row marker: add @pytest.mark.row(kind, name), so "
            "its row is written with its status even when it fails"
        )
    return _pending


def setting(**values: Any) -> None:
    """Settings of the running test known only at run time (e.g. a fuzz seed); they go into its
    row whatever the outcome."""
    json.dumps(values, default=str)
    _owed().settings.update(values)


def record(kind: Kind, name: str, **fields: Any) -> None:
    """The measured fields of the running test's row; call it after the test's assertions.
    ``fields`` must be JSON-serialisable; keep them short and factual (what was injected,
    counts in/out, seconds to recover, ...). The row itself is written when the test ends."""
    if _pending is None:
        raise RuntimeError(
            f"record({kind!r}, {name!r}) in a test without its row marker: add "
            f"@pytest.mark.row({kind!r}, {name!r}), so the row is written with the test's "
            "status even when it fails"
        )
    pending = _pending
    if (kind, name) not in pending.rows:
        raise RuntimeError(
            f"{pending.node} records ({kind!r}, {name!r}) but is marked for "
            f"{sorted(pending.rows)}: add @pytest.mark.row({kind!r}, {name!r})"
        )
    json.dumps(fields, default=str)
    pending.recorded[(kind, name)] = fields


def output_file(name: str) -> Path:
    """Where the running test writes a file for its row (a plot, samples): the run's files/
    directory, or a scratch one when no run is being recorded."""
    if _run is None:
        scratch = RESULTS / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        return scratch / name
    return _run.files / name


# -- reading runs back (tests/reliability/render.py) ---------------------------------------------
def runs(suite: str, root: Path = RESULTS) -> list[Path]:
    """Run directories of ``suite``, oldest first."""
    base = root / suite
    return sorted(p for p in base.iterdir() if (p / "run.json").exists()) if base.is_dir() else []


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    info = json.loads((run_dir / "run.json").read_text())
    rows = [json.loads(p.read_text()) for p in sorted((run_dir / "rows").glob("*.json"))]
    return info, rows


def complete(run_dir: Path) -> bool:
    """The session ended (not interrupted) and every row test it selected left its row."""
    info, rows = load_run(run_dir)
    if not info.get("finished") or info.get("exit_status") == 2:  # 2: interrupted
        return False
    return set(info.get("expected_rows", [])) <= {r["node"] for r in rows}
