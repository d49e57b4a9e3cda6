"""The embedded pipeline inside a notebook kernel: start it in one call, watch the dashboard
inline, see what it did, stop it cleanly (also when the kernel exits first).

The JVMs' logs (Spark's, the broker's) go to files under the data directory, not into the
notebook's cells (see :func:`cryptolab.doctor.log_files`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cryptolab.closing import stop_all
from cryptolab.errors import ConfigError
from cryptolab.feeds.tapes.tape import parse_speed
from cryptolab.lab.data import SAMPLE, resolve_tape
from cryptolab.settings import load_settings

if TYPE_CHECKING:
    from cryptolab.dashboard.server import DashServer
    from cryptolab.stack import Stack

log = logging.getLogger(__name__)


@dataclass
class _Run:
    stack: Stack
    dashboards: list[DashServer] = field(default_factory=list)
    scratch: Path | None = None  # a data directory of our own, removed once stopped


_running: dict[int, _Run] = {}
"""Stacks this kernel started and has not stopped yet."""


def _speed(speed: float | str | None) -> float | None:
    try:
        return parse_speed(speed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def start_pipeline(
    source: str = "replay",
    tape: str | Path | None = SAMPLE,
    symbols: list[str] | str | None = None,
    speed: float | str | None = "max",
    data_dir: str | Path | None = None,
    **overrides: Any,
) -> Stack:
    """Start the whole embedded pipeline (Kafka broker, producer, Spark streaming, store) in this
    kernel and return the running :class:`~cryptolab.stack.Stack`.

    ``source``: ``"replay"`` (``tape``: ``"sample"`` or a tape file, paced by ``speed``, a
    factor or ``"max"``) or ``"live"`` (Binance; if unreachable, the looping sample tape, said
    loudly). ``symbols``: the live feed's symbols, or ``"all"``: every symbol trading on Binance
    spot, followed as listings change (``quote_asset="USDT"`` narrows it); for a replay, the
    symbols kept from the tape (None or ``"all"``: every one). ``data_dir``: where the broker
    log, store and checkpoints live; None = a fresh scratch directory (removed when the
    pipeline stops), so every run starts empty.
    """
    from cryptolab.feeds.source import live_source, only_symbols, replay_source
    from cryptolab.stack import Stack

    if source not in ("replay", "live"):
        raise ConfigError(f"source must be 'replay' or 'live', got {source!r}")
    if source == "replay" and not tape:
        raise ConfigError("a replay needs a tape: 'sample' or a .jsonl(.gz) file")
    path = resolve_tape(tape) if source == "replay" and tape else None
    scratch = None if data_dir else Path(tempfile.mkdtemp(prefix="cryptolab-run-"))
    try:
        settings = load_settings(data_dir=data_dir or scratch, symbols=symbols or None, **overrides)
        if path is not None:
            feed = replay_source(path, _speed(speed))
            feed = only_symbols(feed, settings) if symbols else feed
        else:
            feed = live_source(settings)
    except BaseException:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    stack = Stack(settings, feed)
    _running[id(stack)] = _Run(stack, scratch=scratch)
    try:
        stack.start(dash=False)
    except BaseException:
        stop_pipeline(stack)
        raise
    return stack


def show_dashboard(stack: Stack, port: int | None = None, height: int = 650) -> DashServer:
    """Serve the pipeline's dashboard from this kernel and show it in the output cell, with the
    pipeline panel of ``cryptolab up`` and the same binding and password rules
    (:func:`cryptolab.dashboard.notebook.show`). ``port``: default ``CRYPTOLAB_DASH_PORT``
    (8050), or a free one when that is taken."""
    from cryptolab.bus.broker import free_port, port_in_use
    from cryptolab.dashboard.notebook import show

    assert stack.store is not None, "start the pipeline first"
    settings = stack.settings
    if port is None:
        port = settings.dash_port if not port_in_use(settings.dash_port) else free_port()
    server = show(stack.store, settings, stack.snapshot, mode="inline", port=port, height=height)
    _running.setdefault(id(stack), _Run(stack)).dashboards.append(server)
    return server


def stop_pipeline(stack: Stack) -> None:
    """Stop the dashboards shown for ``stack``, then the pipeline (feed, Spark, store, broker),
    each whatever the others do; a scratch data directory goes too."""
    from cryptolab.dashboard.notebook import stop

    run = _running.pop(id(stack), _Run(stack))
    dashboards = [(f"dashboard {s.url}", functools.partial(stop, s)) for s in run.dashboards]
    try:
        stop_all([*dashboards, ("pipeline", stack.stop)], log)
    finally:
        if run.scratch is not None:
            shutil.rmtree(run.scratch, ignore_errors=True)


@atexit.register
def _stop_all() -> None:
    for run in list(_running.values()):
        with contextlib.suppress(Exception):
            stop_pipeline(run.stack)


def pipeline_summary(stack: Stack) -> pd.DataFrame:
    """What the run did, per symbol: trades published to Kafka, trades and 10 s candles in the
    store, and the trades the candles account for (equal to the stored trades once the
    candles are final). Totals in the last row."""
    from cryptolab.store import queries

    assert stack.store is not None and stack.producer is not None, "start the pipeline first"
    published = dict(stack.producer.stats.per_symbol)
    stored = queries.trade_counts(stack.store)
    in_candles = queries.candle_trade_counts(stack.store)
    windows = {s: len(queries.candles(stack.store, s)) for s in stored}
    symbols = sorted(set(published) | set(stored))
    frame = pd.DataFrame(
        {
            "symbol": symbols,
            "trades published": [published.get(s, 0) for s in symbols],
            "trades stored": [stored.get(s, 0) for s in symbols],
            "10 s candles": [windows.get(s, 0) for s in symbols],
            "trades in candles": [in_candles.get(s, 0) for s in symbols],
        }
    )
    totals = frame.drop(columns="symbol").sum().to_dict()
    frame = pd.concat([frame, pd.DataFrame([{"symbol": "total", **totals}])], ignore_index=True)
    frame = frame.set_index("symbol")
    frame.index.name, frame.columns.name = None, "symbol"
    return frame


def feed_counters(stack: Stack) -> dict[str, int]:
    """The producer's counters: frames read from the source, trades published, frames sent to
    the dead-letter topic (DLQ)."""
    assert stack.producer is not None, "start the pipeline first"
    stats = stack.producer.stats
    return {"frames": stats.frames, "trades": stats.trades, "dlq": stats.dlq}


def run_pipeline(stack: Stack, duration: float | None = None) -> None:
    """Run for ``duration`` seconds, or (a replay, ``duration`` None) until every trade of the
    tape is in the store; either way the stack drains, so the candles are final."""
    if duration is None and not stack.source.finite:
        raise ConfigError("a live feed never drains: pass a duration in seconds")
    stack.run(seconds=duration, until_drained=duration is None)


def timings(stack: Stack) -> dict[str, Any]:
    """Volatile facts of the run: how long it has been up, the newest trade, its freshness
    (live feeds only: a replay's trades are as old as the tape), watermark drops, and the
    windows the reconciliation corrected (how many depends on micro-batch timing)."""
    from cryptolab.store import queries
    from cryptolab.store.quality import dropped_by_watermark

    assert stack.store is not None, "start the pipeline first"
    newest = queries.newest_trade_time(stack.store)
    now = datetime.now(UTC)
    fresh = (now - newest).total_seconds() if newest and not stack.source.finite else None
    return {
        "up for (s)": round(time.time() - stack.status.started_at, 1),
        "newest trade": newest.isoformat() if newest else None,
        "freshness (s)": None if fresh is None else round(fresh, 1),
        "late rows dropped by the watermark": dropped_by_watermark(stack.store),
        "windows corrected by reconcile": sum(len(r.changed) for r in stack.reconcile_reports),
    }
