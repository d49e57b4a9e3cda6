"""benchmarks.report publishes one complete, clean run, never a mix of runs."""

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.common import Baseline, Clause, Result
from cryptolab.errors import CryptolabError


def _run(root: Path, name: str, rows: list[int], **meta: Any) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    values = {
        "run": name,
        "commit": "abc123",
        "commit_end": "abc123",
        "command": "python -m benchmarks.run",
        "rows_wanted": [1, 2],
        "partial": False,
        "quick": False,
        "repeats": 3,
        "started": "2026-12-01T00:00:00+00:00",
        "finished": "2026-12-01T00:20:00+00:00",
        "machine": {"cpus": "2"},
    } | meta
    (run_dir / "run.json").write_text(json.dumps(values))
    for number in rows:
        result = Result(number, f"row {number}", "msg/s", [3.0, 1.0, 2.0], "> 1", [])
        result.baselines = [Baseline("base", [1.0, 1.0, 1.0])]
        result.clauses = [Clause("> 1", 2.0, True)]
        row = result.as_dict() | {"commit": values["commit"], "date": "d", "command": "c"}
        (run_dir / f"row-{number}.json").write_text(json.dumps(row))
    return run_dir


def test_status_is_failed_when_a_check_failed_whatever_the_numbers() -> None:
    result = Result(1, "m", "s", [1.0], "t", [Clause("fast", 1.0, True)], error="3 trades lost")
    assert result.status == "failed"
    result.error = None
    assert result.status == "met"
    result.clauses.append(Clause("faster", 1.0, False))
    assert result.status == "missed"
    assert Result(1, "m", "s", [1.0], "t", []).status == "missed"  # no clause, nothing met


def test_ratio_is_of_medians_and_knows_which_way_is_better() -> None:
    per_s = Result(1, "m", "msg/s", [10.0, 30.0, 20.0], "t", [])
    assert per_s.ratio(Baseline("b", [1.0, 2.0, 100.0])) == 10.0
    latency = Result(1, "m", "ms p50", [2.0, 4.0, 3.0], "t", [])
    assert latency.ratio(Baseline("b", [30.0])) == 10.0


def test_newest_clean_complete_run_is_rendered_and_partial_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "REPORTS", tmp_path / "reports")
    root = tmp_path / "runs"
    good = _run(root, "20261201T000000Z-abc", [1, 2])
    _run(root, "20261201T010000Z-abc", [2], partial=True, rows_wanted=[2])
    _run(root, "20261201T020000Z-dirty", [1, 2], commit="abc123+dirty")
    _run(root, "20261201T030000Z-quick", [1, 2], quick=True)
    _run(root, "20261201T040000Z-unfinished", [1], finished=None)
    assert report.pick(None, root, draft=False) == good
    text = report.render(None, root, draft=False)
    published = json.loads((tmp_path / "reports" / "benchmarks.json").read_text())
    assert published["run"] == good.name and published["draft"] == []
    assert {r["commit"] for r in published["rows"]} == {"abc123"}
    assert [r["id"] for r in published["rows"]] == [1, 2]
    assert "DRAFT" not in text and "2.000 (1.000–3.000)" in text
    with pytest.raises(CryptolabError, match="--only"):
        report.render(root / "20261201T010000Z-abc", root, draft=False)
    draft = report.render(root / "20261201T010000Z-abc", root, draft=True)
    assert draft.splitlines()[2].startswith("**DRAFT")


def test_a_run_missing_a_wanted_row_is_not_publishable(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "r", [1])
    meta = json.loads((run_dir / "run.json").read_text())
    rows = [json.loads((run_dir / "row-1.json").read_text())]
    assert report.problems(meta, rows) == ["rows [2] have no result"]
    with pytest.raises(CryptolabError, match="no publishable"):
        report.pick(None, tmp_path / "empty", draft=False)
