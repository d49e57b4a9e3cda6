"""The pytest side of result rows (see tests/reliability/results.py): tests/conftest.py calls
these from its hooks. A run directory is opened when the session selected at least one test
marked ``@pytest.mark.row(kind, name, **settings)``; every such test leaves exactly its rows,
with the status pytest gave it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.reliability import results
from tests.reliability.results import Pending, Run

PHASES = pytest.StashKey[dict[str, pytest.TestReport]]()
MAX_REASON = 1_000


def add_option(parser: pytest.Parser) -> None:
    parser.addoption(
        "--results-dir",
        default=str(results.RESULTS),
        help="where runs' result rows go (default: build/results, git-ignored)",
    )
    parser.addoption(
        "--results-suite",
        default="reliability",
        help="results go to build/results/<suite>/<run id>/ (default: reliability; "
        "`make soak` uses soak)",
    )


def row_keys(item: pytest.Item) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> settings for each row marker of ``item`` (``{param}`` in the name is
    filled from the test's parameters)."""
    callspec = getattr(item, "callspec", None)
    params = dict(callspec.params) if callspec is not None else {}
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    for marker in item.iter_markers("row"):
        kind, name = marker.args
        keys[(kind, name.format(**params))] = dict(marker.kwargs)
    return keys


def start_run(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or hasattr(config, "workerinput"):
        return
    expected = [item.nodeid for item in session.items if item.get_closest_marker("row")]
    if expected:
        suite = config.getoption("--results-suite")
        root = Path(config.getoption("--results-dir"))
        results.set_run(Run.start(root, suite, list(config.invocation_params.args), expected))


def begin(item: pytest.Item) -> None:
    keys = row_keys(item)
    results.set_pending(Pending(item.nodeid, keys) if keys else None)
    item.stash[PHASES] = {}


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: why")
        text = str(longrepr[2])
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(longrepr)
    lines = text.strip().splitlines()  # the first line: "AssertionError: <the message>"
    return (lines[0] if lines else "")[:MAX_REASON]


def _status(phases: dict[str, pytest.TestReport]) -> tuple[str, str]:
    """(status, reason) of a test from its setup, call and teardown reports."""
    for when in ("setup", "call", "teardown"):
        report = phases.get(when)
        if report is None:
            continue
        where = "" if when == "call" else f"error in {when}: "
        if report.failed:
            return "failed", where + _reason(report)
        if report.skipped:
            return "skipped", _reason(report)
    return "passed", ""


def on_report(item: pytest.Item, report: pytest.TestReport) -> None:
    pending = results._pending
    if pending is None or pending.node != item.nodeid:
        return
    phases = item.stash.setdefault(PHASES, {})
    if report.when == "call" and report.passed:
        missing = [key for key in pending.rows if key not in pending.recorded]
        if missing:  # a row test that measured nothing did not pass
            report.outcome = "failed"
            report.longrepr = (
                f"the test passed but never called record() for {missing}: its row would "
                "publish nothing measured"
            )
    phases[report.when] = report
    if report.when != "teardown":
        return
    status, reason = _status(phases)
    run = results.current_run()
    results.set_pending(None)
    if run is None:
        return
    seconds = sum(r.duration for r in phases.values())
    for (kind, name), settings in pending.rows.items():
        row: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "status": status,
            "reason": reason,
            "node": item.nodeid,
            "run_id": run.info["run_id"],
            "commit": run.info["commit"],
            "date": results.utc_now(),
            "seconds": round(seconds, 1),
            "settings": {**settings, **pending.settings},
            "fields": pending.recorded.get((kind, name), {}),
        }
        run.write_row(row)


def finish(exit_status: int) -> Run | None:
    """Close the session's run (if one was opened) and return it."""
    run = results.current_run()
    if run is not None:
        run.finish(int(exit_status))
        results.set_run(None)
    return run
