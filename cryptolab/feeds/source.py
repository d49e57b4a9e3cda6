"""Choosing where frames come from: live Binance, a tape, or the sample tape as a live demo."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cryptolab.feeds.live import binance
from cryptolab.feeds.tapes import tape
from cryptolab.settings import Settings

log = logging.getLogger(__name__)

DEMO_TAPE = "demo_loop.jsonl.gz"


def demo_tape() -> Path:
    """The demo loop shipped with the package: a clean synthetic tape (3 symbols, 15 minutes)
    that ``cryptolab up`` loops, shifted to the present, when Binance is unreachable, and that
    ``--source replay`` plays without ``--tape``. Notebooks and reports use the analysis
    sample instead (:func:`cryptolab.lab.data.sample_market`: 30 minutes with real-world
    defects)."""
    return Path(str(resources.files("cryptolab.data") / DEMO_TAPE))


@dataclass(frozen=True)
class Source:
    kind: str  # "live" | "replay" | "demo"
    description: str
    frames: Callable[[threading.Event], Iterator[str | bytes]]
    finite: bool
    stops_itself: bool = False  # the frames iterator ends by itself soon after stop is set
    counters: Callable[[], dict[str, int]] | None = None  # feed counters (live source)
    paced: bool = True  # frames come as they happen; False: as fast as read (published in batches)
    resume: Callable[[dict[str, int]], None] | None = None
    """Live source: continue each symbol after this trade id (e.g. the last one of the
    history in the store): the gap up to the first live trade is backfilled over REST."""


def replay_source(path: Path, speed: float | None) -> Source:
    path = Path(path)
    next(tape.read_frames(path), None)  # fail now, clearly, if the tape is missing or unreadable
    pace = "max speed" if speed is None else f"{speed:g}x"
    return Source(
        kind="replay",
        description=f"REPLAY of {path.name} at {pace} — not live",
        frames=lambda stop: tape.replay(tape.read_frames(path), speed),
        finite=True,
        paced=speed is not None,
    )


def demo_source(reason: str) -> Source:
    return Source(
        kind="demo",
        description=f"REPLAY — not live (Binance unreachable: {reason[:120]})",
        frames=lambda stop: tape.replay(tape.looped_live(demo_tape()), 1.0),
        finite=False,
    )


def live_source(settings: Settings) -> Source:
    """Live Binance if it answers within the connect timeout, else the looping sample tape."""
    reason = binance.probe(
        settings.binance_ws_url, settings.symbols, settings.connect_timeout_seconds
    )
    if reason is not None:
        banner = "=" * 78
        log.warning(
            "\n%s\n  BINANCE UNREACHABLE (%s)\n  Replaying the bundled sample tape in real time "
            "instead. THIS IS NOT LIVE DATA.\n%s",
            banner,
            reason,
            banner,
        )
        return demo_source(reason)
    feed = binance.BinanceFeed.from_settings(settings)
    return Source(
        kind="live",
        description=f"LIVE Binance {','.join(settings.symbols)}",
        frames=feed.frames,
        finite=False,
        stops_itself=True,
        counters=feed.counters.as_dict,
        resume=feed.resume_from,
    )
