"""System tools some tests need (Debian packages). CI installs them (scripts/test-tools.sh);
on a developer machine without them those tests are skipped with the command that installs
them. With CI set, a missing tool fails instead, so CI can never skip these tests silently."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PACKAGES = {
    "docker-compose": "docker-compose",
    "clickhouse-server": "clickhouse-server",
    "openssl": "openssl",
    "curl": "curl",
}


def need(executable: str) -> str:
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
    message = (
        f"{executable} not found: install it with `apt-get install {PACKAGES[executable]}` "
        "(or run scripts/test-tools.sh as root)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
