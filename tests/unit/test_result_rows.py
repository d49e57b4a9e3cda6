"""Result rows outlive nothing: every test marked ``row`` leaves its row with the status pytest
gave it (a failure before ``record()`` included), results go to the run's own directory, and
``make reports`` renders one run. Checked on a throwaway suite run by a real pytest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.reliability import render
from tests.reliability.results import ROOT, complete, load_run, runs

SUITE = """
import pytest
from tests.reliability.results import record, setting


@pytest.mark.row("fuzz", "passes")
def test_passes():
    setting(seed=7)
    record("fuzz", "passes", cases=3)


@pytest.mark.row("fuzz", "fails before record", watermark_s=10)
def test_fails_before_record():
    setting(seed=8)
    lost = 2
    assert lost == 0, f"{lost} trades lost"
    record("fuzz", "fails before record", lost=lost)


@pytest.mark.row("fuzz", "passes without record")
def test_passes_without_record():
    pass


@pytest.mark.row("fuzz", "skipped")
def test_skipped():
    pytest.skip("no such tool here")


def test_records_without_a_marker():
    record("fuzz", "unmarked", cases=1)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM"])
@pytest.mark.row("security", "sasl {mechanism}")
def test_parametrized(mechanism):
    record("security", f"sasl {mechanism}", cases=1)


def test_not_a_row_test():
    pass
"""


CONFTEST = """
from tests.conftest import (
    pytest_addoption, pytest_collection_finish, pytest_configure, pytest_runtest_makereport,
    pytest_runtest_setup, pytest_sessionfinish, pytest_terminal_summary,
)
"""


def run_suite(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_rows.py").write_text(SUITE)
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir",
         str(tmp_path), "--results-dir", str(results), *args, str(tmp_path / "test_rows.py")],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return done, results


def test_every_row_test_leaves_a_row_with_its_status_and_the_run_renders(tmp_path: Path) -> None:
    done, results = run_suite(tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "3 failed, 4 passed, 1 skipped" in done.stdout, done.stdout[-3000:]
    assert "never called record()" in done.stdout  # passing without a row is a failure
    assert "add @pytest.mark.row('fuzz', 'unmarked')" in done.stdout
    [run_dir] = runs("reliability", results)
    info, rows = load_run(run_dir)
    assert info["finished"] and info["exit_status"] == 1 and info["commit"]
    assert len(info["expected_rows"]) == 6 and complete(run_dir)
    by_name: dict[str, dict[str, Any]] = {r["name"]: r for r in rows}
    assert sorted(by_name) == ["fails before record", "passes", "passes without record",
                               "sasl PLAIN", "sasl SCRAM", "skipped"]  # fmt: skip
    passed = by_name["passes"]
    assert (passed["status"], passed["fields"], passed["settings"]) == ("passed", {"cases": 3},
                                                                        {"seed": 7})  # fmt: skip
    assert passed["commit"] == info["commit"] and passed["run_id"] == run_dir.name
    failed = by_name["fails before record"]
    assert failed["status"] == "failed" and "2 trades lost" in failed["reason"]
    assert failed["settings"] == {"watermark_s": 10, "seed": 8} and failed["fields"] == {}
    assert by_name["passes without record"]["status"] == "failed"
    assert by_name["skipped"]["status"] == "skipped"
    assert "no such tool here" in by_name["skipped"]["reason"]
    assert not list(tmp_path.glob("reports*")), "pytest itself writes no report"

    reports = tmp_path / "reports"
    assert render.main(["--results-dir", str(results), "--reports-dir", str(reports)]) == 0
    text = (reports / "reliability.md").read_text()
    assert f"run `{run_dir.name}`, commit `{info['commit']}`" in text
    assert "Rows: 2 failed, 3 passed, 1 skipped" in text
    assert "| fails before record | failed |" in text and "**FAILED**: " in text
    assert text.count(f"| {info['commit'][:12]}") == len(rows)


def test_an_interrupted_run_is_not_complete_and_is_not_rendered_by_default(
    tmp_path: Path,
) -> None:
    done, results = run_suite(tmp_path, "-x")
    assert done.returncode == 1
    [run_dir] = runs("reliability", results)
    assert not complete(run_dir), "stopped at the first failure: some rows were never written"
    assert render.main(["--results-dir", str(results), "--reports-dir", str(tmp_path / "r")]) == 2
    info = json.loads((run_dir / "run.json").read_text())
    assert info["pytest_args"][-2:] == ["-x", str(tmp_path / "test_rows.py")]
