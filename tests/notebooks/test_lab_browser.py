"""`make lab` in headless Chromium, as a new user tries it: JupyterLab opens, notebook 01 runs
with Run All Cells, the inline dashboard shows candles from the pipeline in the kernel, and no
dialog ever appears (no "Build Recommended" for dash's legacy JupyterLab extension, no failed
build). A copy of the notebook runs (a short replay), so the committed one is never touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cryptolab.bus.broker import free_port
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.browser import CHART_DATA_JS, launch
from tests.e2e.helpers import environment

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOT = ROOT / "build" / "lab" / "notebook01.png"
RUN_TIMEOUT = 600


def notebook_copy(folder: Path, tape: Path, dash_port: int) -> Path:
    """Notebook 01 with a short replay of ``tape`` for parameters."""
    notebook = json.loads((ROOT / "notebooks" / "01_live_pipeline.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = (
        f'source = "replay"\ntape = {str(tape)!r}\nsymbols = None\nduration = None\n'
        f"speed = 10\ndata_dir = None\ndash_port = {dash_port}\n"
    )
    for code in notebook["cells"]:
        if code["cell_type"] == "code":
            code["outputs"], code["execution_count"] = [], None
    path = folder / "01_live_pipeline.ipynb"
    path.write_text(json.dumps(notebook))
    return path


def wait_for_lab(url: str, lab: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert lab.poll() is None, lab.stdout.read() if lab.stdout else ""
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError("JupyterLab did not answer")


def test_notebook_01_runs_in_jupyterlab_with_inline_candles_and_no_dialog(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    tape = tmp_path / "two.jsonl.gz"
    write_frames(tape, synth_frames(["BTCUSDT", "ETHUSDT"], 300, 3, seed=17))
    folder = tmp_path / "notebooks"
    folder.mkdir()
    notebook_copy(folder, tape, free_port())
    port, token = free_port(), "cryptolab-lab-test"
    args = f"--no-browser --port={port} --IdentityProvider.token={token}"
    args += " --allow-root" if os.geteuid() == 0 else ""
    jupyter = {n: str(tmp_path / n.lower()) for n in ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR")}
    lab = subprocess.Popen(
        ["make", "lab", f"ARGS={args}", f"NOTEBOOK_DIR={folder}"],
        cwd=ROOT,
        env=environment(tmp_path / "data", **jupyter),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    dialogs: list[str] = []
    most_candles = 0
    try:
        wait_for_lab(f"{base}/api/status?token={token}", lab)
        with sync_playwright() as playwright:
            browser = launch(playwright, tmp_path / "profile")
            page = browser.new_page()
            page.goto(f"{base}/lab/tree/01_live_pipeline.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=120_000)
            page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            deadline = time.monotonic() + RUN_TIMEOUT
            while time.monotonic() < deadline:
                dialogs += [text for text in page.locator(".jp-Dialog").all_inner_texts() if text]
                frame = page.frame_locator(".jp-OutputArea-output iframe").first
                chart: Any = None
                if page.locator(".jp-OutputArea-output iframe").count():
                    chart = frame.locator("body").evaluate(f"() => ({CHART_DATA_JS})()")
                if chart:
                    most_candles = max(most_candles, len(chart["x"]))
                    if most_candles and not SHOT.exists():
                        SHOT.parent.mkdir(parents=True, exist_ok=True)
                        page.locator("iframe").first.scroll_into_view_if_needed()
                        page.screenshot(path=str(SHOT))
                if page.locator(".jp-OutputArea-output", has_text="stopped").count() and (
                    page.locator(".jp-OutputArea-output pre", has_text="stopped").count()
                ):
                    break
                time.sleep(1)
            outputs = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
            errors = page.locator(".jp-OutputArea-output[data-mime-type*='error']").count()
            time.sleep(5)  # a build check would have spoken by now
            dialogs += [text for text in page.locator(".jp-Dialog").all_inner_texts() if text]
            browser.close()
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            lab.wait(timeout=60)
    assert not dialogs, f"JupyterLab showed a dialog: {dialogs}"
    assert errors == 0, outputs[-3000:]
    assert "drained: every published trade is in the store" in outputs, outputs[-3000:]
    assert "stopped" in outputs.split("drained")[-1], "the last cell stopped the pipeline"
    assert most_candles > 0, "the inline dashboard showed the pipeline's candles"
