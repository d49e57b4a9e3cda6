"""Headless Chromium for browser tests: Debian's ``chromium`` driven by Playwright.

Playwright never downloads a browser here (no ``playwright install``): it launches the system
Chromium through ``executable_path``. When Chromium is missing and we run as root (CI on a fresh
machine), it is installed with apt-get; otherwise the test is skipped with the command to run,
and under CI it fails with that reason (tests/tools.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.tools import unavailable

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Path of the system Chromium, installing Debian's package first if needed and possible."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        why = "not root" if shutil.which("apt-get") else "no apt-get"
        unavailable(
            f"BROWSER TESTS NOT RUN: Chromium is missing and cannot be installed from here "
            f"({why}); run `sudo apt-get install -y chromium` and re-run the tests"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr[-3000:]}"
    found = shutil.which("chromium")
    assert found, "apt-get installed chromium but it is not on PATH"
    return found


def launch(playwright: Any, profile: Path) -> Any:
    """A persistent browser context on a fresh profile directory (``--user-data-dir``)."""
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=chromium_path(),
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1400, "height": 1000},
    )


CHART_DATA_JS = """() => {
  const plot = document.querySelector('#chart .js-plotly-plot');
  if (!plot || !plot.data || !plot.data.length || plot.data[0].type !== 'candlestick') return null;
  const c = plot.data[0];
  return {name: c.name, x: Array.from(c.x), open: Array.from(c.open), high: Array.from(c.high),
          low: Array.from(c.low), close: Array.from(c.close), traces: plot.data.length};
}"""
"""Evaluated in the page: the candlestick trace the chart shows, or null."""
