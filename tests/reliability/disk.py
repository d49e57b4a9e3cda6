"""A small real filesystem (tmpfs) the test can fill up, to make ClickHouse's disk full."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.tools import unavailable


@contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    """Mount a ``size_mb`` tmpfs on ``path`` for the duration (needs CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)]
    try:
        mounted = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        unavailable("cannot mount a tmpfs to fill up: no `mount` command here")
    if mounted.returncode != 0:
        unavailable(
            f"cannot mount a tmpfs to fill up (needs root or CAP_SYS_ADMIN): "
            f"{mounted.stderr.strip() or f'mount exited {mounted.returncode}'}"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk is full (ENOSPC); return it."""
    ballast = disk / "ballast"
    chunk = b"\0" * (1 << 20)
    with ballast.open("wb") as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return ballast
