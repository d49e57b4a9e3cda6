"""What a test does when a real part it needs cannot be had here.

System tools some tests need (Debian packages) are installed by scripts/test-tools.sh (run by
`make test`). On a developer machine without them (or without root for a tmpfs mount, or
without Chromium) those tests are skipped, saying why and what to run. Under CI (the
environment variable ``CI`` set to anything but ``""``, ``0``, ``false`` or ``no``, as
``.ci/run`` and every hosted CI do) the same tests FAIL with that reason instead: CI never skips
a test silently because a part is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

PACKAGES = {
    "docker-compose": "docker-compose",
    "clickhouse-server": "clickhouse-server",
    "openssl": "openssl",
    "curl": "curl",
}


def in_ci() -> bool:
    """True when the environment variable ``CI`` is set to a true-ish value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the running test with ``reason``; under CI, fail it with ``reason`` instead."""
    if in_ci():
        pytest.fail(f"{reason} [CI is set: a missing part fails the test, it is never skipped]",
                    pytrace=False)  # fmt: skip
    pytest.skip(reason)


def need(executable: str) -> str:
    """Path of a system tool; skip (fail under CI) naming the package when it is missing."""
    found = shutil.which(executable) or next(
        (
            str(p)
            for p in (Path("/usr/sbin") / executable, Path("/usr/bin") / executable)
            if p.exists()
        ),
        None,
    )
    if found:
        return found
    unavailable(
        f"{executable} not found: install it with `apt-get install {PACKAGES[executable]}` "
        "(or run scripts/test-tools.sh as root)"
    )
