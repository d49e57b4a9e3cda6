"""Take the README's dashboard screenshots with headless Chromium (Debian's, via Playwright).

Both run the real embedded pipeline (Kafka broker, Spark, chDB, Dash) in a child process on a
fresh data directory, fed by the bundled sample tape looped and shifted to the present:

* light - a minute after start: a few candles, the pipeline warming up (15 m range);
* full  - the same, over a store pre-filled with 2 days of synthetic 10 s candles ending now
          (benchmarks/candlegen.py), viewed over 6 h.

    .venv/bin/python scripts/dashboard_screenshots.py          # writes docs/dashboard-*.png
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CANDLES_SHOWN = """() => {
  const plot = document.querySelector('#chart .js-plotly-plot');
  return plot && plot.data && plot.data.length && plot.data[0].type === 'candlestick';
}"""
SCENARIOS = {"light": ("15m", 0.0, 60.0), "full": ("6h", 2.0, 45.0)}


def scenario(name: str, data_dir: Path, out: Path) -> None:
    """Run the pipeline with the dashboard, wait, take one screenshot (in this process)."""
    from playwright.sync_api import sync_playwright

    from cryptolab.bus.broker import free_port
    from cryptolab.feeds.source import Source, demo_tape
    from cryptolab.feeds.tapes import tape
    from cryptolab.settings import load_settings
    from cryptolab.stack import Stack
    from tests.browser import launch

    range_key, _, wait_s = SCENARIOS[name]
    settings = load_settings(data_dir=data_dir, dash_port=free_port())
    source = Source(
        kind="demo",
        description="REPLAY of the bundled sample tape, shifted to now — not live",
        frames=lambda stop: tape.replay(tape.looped_live(demo_tape()), 1.0),
        finite=False,
    )
    with Stack(settings, source).start(dash=True) as stack:
        assert stack.dashboard is not None
        url = f"{stack.dashboard.url}?symbol=BTCUSDT&range={range_key}"
        time.sleep(wait_s)
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            browser = launch(playwright, Path(profile))  # the browser tests' Chromium
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function(CANDLES_SHOWN, timeout=60_000)
            page.wait_for_timeout(6000)  # a few live ticks, Kafka lag measured
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS))
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:  # the child: chDB allows one data directory per process
        scenario(args.scenario, args.data_dir, DOCS / f"dashboard-{args.scenario}.png")
        return
    DOCS.mkdir(exist_ok=True)
    for name in [args.only] if args.only else list(SCENARIOS):
        with tempfile.TemporaryDirectory(prefix=f"cryptolab-shot-{name}-") as tmp:
            days = SCENARIOS[name][1]
            if days:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.candlegen",
                        "--data-dir",
                        tmp,
                        "--days",
                        str(days),
                    ],
                    cwd=ROOT,
                    check=True,
                )
            subprocess.run(
                [sys.executable, __file__, "--scenario", name, "--data-dir", tmp],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},  # tests.browser, for launch()
                check=True,
            )


if __name__ == "__main__":
    main()
