"""Record the live feed to a tape: every trade frame exactly as received on the WebSocket, plus
the trades recovered over REST (tagged ``"backfill":true``), each symbol in trade-id order."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptolab.errors import FeedError
from cryptolab.feeds.live.binance import BinanceFeed, probe
from cryptolab.feeds.live.universe import ExchangeUnreachable, describe, resolve_symbols
from cryptolab.feeds.tapes.tape import open_tape
from cryptolab.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordResult:
    frames: int
    counters: dict[str, int]


def record(
    settings: Settings, out: Path, seconds: float | None, stop: threading.Event | None = None
) -> RecordResult:
    """Record ``settings.symbols`` (``all``: every trading symbol, followed as listings
    change) until ``seconds`` pass or ``stop`` is set.

    Recording keeps no gap state: the last trade ids saved for ``cryptolab up`` stay untouched.
    """
    try:
        symbols = resolve_symbols(settings)
    except ExchangeUnreachable as exc:
        raise FeedError(
            f"cannot read the symbol list ({exc}): check the network, or set "
            "CRYPTOLAB_BINANCE_REST_URL"
        ) from exc
    reason = probe(settings.binance_ws_url, symbols, settings.connect_timeout_seconds)
    if reason is not None:
        raise FeedError(
            f"cannot reach Binance at {settings.binance_ws_url} ({reason}): check the network, "
            "or set CRYPTOLAB_BINANCE_WS_URL / CRYPTOLAB_BINANCE_REST_URL"
        )
    stop = stop or threading.Event()
    timer = threading.Timer(seconds, stop.set) if seconds else None
    feed = BinanceFeed.from_settings(settings, persist=False, symbols=symbols)
    log.info("recording %s", describe(settings, symbols))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        with open_tape(out, "w") as handle:
            for frame in feed.frames(stop):
                # a tape is text: a binary message that is not UTF-8 is kept with U+FFFD
                handle.write(
                    frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
                )
                handle.write("\n")
                count += 1
    finally:
        if timer is not None:
            timer.cancel()
    log.info("recorded frames=%d to=%s", count, out)
    return RecordResult(count, feed.counters.as_dict())
