"""Choosing where frames come from: live Binance, a tape, or the sample tape as a live demo."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cryptolab.feeds.live import binance, universe
from cryptolab.feeds.tapes import tape
from cryptolab.frames import symbol_of
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


def only_symbols(source: Source, settings: Settings) -> Source:
    """A replay restricted to ``settings.symbols`` (``all``: every symbol of the tape; with a
    quote asset, those whose name ends with it, e.g. ``USDT``). Frames without a readable symbol
    still pass, so bad frames still reach the dead-letter topic."""
    wanted, quote = set(settings.symbols), settings.quote_asset or ""
    every = settings.all_symbols

    def keep(symbol: str | None) -> bool:
        if symbol is None:
            return True
        return symbol.endswith(quote) if every else symbol in wanted

    def frames(stop: threading.Event) -> Iterator[str | bytes]:
        return (frame for frame in source.frames(stop) if keep(symbol_of(frame)))

    label = f"all{' ' + quote if quote else ''}" if every else ",".join(settings.symbols[:8])
    return dataclasses.replace(source, description=f"{source.description} ({label})", frames=frames)


def demo_source(reason: str) -> Source:
    return Source(
        kind="demo",
        description=f"REPLAY — not live (Binance unreachable: {reason[:120]})",
        frames=lambda stop: tape.replay(tape.looped_live(demo_tape()), 1.0),
        finite=False,
    )


def live_source(settings: Settings) -> Source:
    """Live Binance if it answers within the connect timeout, else the looping sample tape.
    ``symbols=all``: the trading symbols from exchangeInfo, followed as they change; an explicit
    list naming a symbol Binance does not list fails here (ConfigError, with close matches)."""
    try:
        symbols = universe.resolve_symbols(settings)
    except universe.ExchangeUnreachable as exc:
        return _unreachable(str(exc))
    reason = binance.probe(settings.binance_ws_url, symbols, settings.connect_timeout_seconds)
    if reason is not None:
        return _unreachable(reason)
    feed = binance.BinanceFeed.from_settings(settings, symbols=symbols)
    return Source(
        kind="live",
        description=f"LIVE Binance {universe.describe(settings, symbols)}",
        frames=feed.frames,
        finite=False,
        stops_itself=True,
        counters=feed.counters.as_dict,
        resume=feed.resume_from,
    )


def _unreachable(reason: str) -> Source:
    banner = "=" * 78
    log.warning(
        "\n%s\n  BINANCE UNREACHABLE (%s)\n  Replaying the bundled sample tape in real time "
        "instead. THIS IS NOT LIVE DATA.\n%s",
        banner,
        reason,
        banner,
    )
    return demo_source(reason)
