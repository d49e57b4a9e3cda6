"""A real part that cannot be had skips its test locally, saying why, and FAILS it under CI
(tests/tools.py): CI can never pass by skipping."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.disk import small_disk
from tests.tools import in_ci, need, unavailable


@pytest.mark.parametrize(
    ("value", "ci"),
    [("", False), ("0", False), ("false", False), ("No", False), ("true", True), ("1", True)],
)
def test_ci_is_any_true_ish_value(monkeypatch: pytest.MonkeyPatch, value: str, ci: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_a_missing_part_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no such part"):
        unavailable("no such part")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no such part.*never skipped"):
        unavailable("no such part")


def test_a_missing_tool_or_mount_fails_under_ci_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PATH", str(tmp_path))  # no tool on PATH
    monkeypatch.setattr(Path, "exists", lambda self: False)  # nor in /usr/sbin, /usr/bin
    with pytest.raises(pytest.fail.Exception, match="apt-get install docker-compose"):
        need("docker-compose")
    monkeypatch.undo()
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PATH", str(tmp_path))  # no `mount` command
    with (
        pytest.raises(pytest.fail.Exception, match="cannot mount a tmpfs"),
        small_disk(tmp_path / "disk", 1),
    ):
        pass
