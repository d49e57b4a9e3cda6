"""An unwritable data directory is a clear error before anything starts: exit code 2, the
setting, the path and the reason, no traceback. Two cases: a path under a regular file (runs
everywhere, no root needed) and a read-only filesystem (a tmpfs remounted read-only: needs
root; skipped elsewhere, failing under CI, see tests/tools.py)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.e2e.helpers import environment
from tests.reliability.disk import small_disk
from tests.reliability.results import record

STARTS_WITHIN_S = 60


def refused(data_dir: Path, tmp_path: Path) -> tuple[str, float]:
    """Run `cryptolab up` on ``data_dir``; it must refuse at once. Its error line, and seconds."""
    tape = tmp_path / "tape.jsonl.gz"
    write_frames(tape, synth_frames(["BTCUSDT"], 20, 10, seed=95))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", "up", "--source", "replay", "--tape", str(tape),
         "--speed", "max", "--until-drained", "--no-dash"],
        env=environment(data_dir, CRYPTOLAB_TOPIC=f"t_{uuid.uuid4().hex[:8]}"), text=True,
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert f"CRYPTOLAB_DATA_DIR={data_dir} is not a writable directory" in done.stderr
    assert seconds < STARTS_WITHIN_S, f"refused only after {seconds:.0f} s"
    error = done.stderr.strip().splitlines()[-1].removeprefix("cryptolab: ").removeprefix("error: ")
    return error.replace(str(data_dir), "<the data dir>"), seconds


@pytest.mark.row("fault", "Unwritable data dir: under a regular file")
def test_a_data_dir_under_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    afile = tmp_path / "not-a-dir"
    afile.write_text("")
    error, seconds = refused(afile / "data", tmp_path)
    record(
        "fault",
        "Unwritable data dir: under a regular file",
        injected="CRYPTOLAB_DATA_DIR=<a regular file>/data",
        outcome="exit code 2 before anything starts, no traceback",
        error=error,
        seconds=round(seconds, 1),
    )


@pytest.mark.row("fault", "Unwritable data dir: read-only filesystem")
def test_a_data_dir_on_a_read_only_filesystem_is_a_clear_error(tmp_path: Path) -> None:
    with small_disk(tmp_path / "ro", 1) as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        error, seconds = refused(disk / "data", tmp_path)
    record(
        "fault",
        "Unwritable data dir: read-only filesystem",
        injected="CRYPTOLAB_DATA_DIR on a tmpfs remounted read-only",
        outcome="exit code 2 before anything starts, no traceback",
        error=error,
        seconds=round(seconds, 1),
    )
