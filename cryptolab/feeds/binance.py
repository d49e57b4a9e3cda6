"""Live Binance trades over the combined-stream WebSocket.

``<ws_url>/stream?streams=btcusdt@trade/ethusdt@trade`` wraps each event as
``{"stream": "btcusdt@trade", "data": {...}}``. Binance pings every 20 s and drops a connection
that has not answered within a minute; websocket-client answers pings with a pong carrying the
same payload while we read. The client reconnects with capped exponential backoff plus jitter,
reset after a healthy connection, and treats a socket silent for ``silence_timeout`` as dead.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import orjson
import websocket

log = logging.getLogger(__name__)

MAX_STREAMS_PER_CONNECTION = 1024


def stream_url(base_url: str, symbols: Sequence[str]) -> str:
    """Combined-stream URL for the ``@trade`` streams of ``symbols`` (lowercased)."""
    if not symbols:
        raise ValueError("at least one symbol is required")
    if len(symbols) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"at most {MAX_STREAMS_PER_CONNECTION} streams per connection")
    streams = "/".join(f"{s.lower()}@trade" for s in symbols)
    return f"{base_url.rstrip('/')}/stream?streams={streams}"


def probe(base_url: str, symbols: Sequence[str], timeout: float) -> str | None:
    """Try to open the stream once; None when it works, else the reason it does not."""
    try:
        conn = websocket.create_connection(stream_url(base_url, symbols), timeout=timeout)
    except (OSError, websocket.WebSocketException) as exc:
        return f"{type(exc).__name__}: {exc}"
    conn.close()
    return None


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter; ``reset`` after a healthy connection."""

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        delay = random.uniform(0, min(self.cap, self.base * 2**self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class FeedCounters:
    messages: int = 0
    reconnects: int = 0
    control_events: int = 0


class BinanceFeed:
    """Yields raw text frames from Binance until ``stop`` is set."""

    def __init__(
        self,
        base_url: str,
        symbols: Sequence[str],
        connect_timeout: float = 10.0,
        silence_timeout: float = 60.0,
        healthy_after: float = 30.0,
    ) -> None:
        self.url = stream_url(base_url, symbols)
        self.connect_timeout = connect_timeout
        self.silence_timeout = silence_timeout
        self.healthy_after = healthy_after
        self.counters = FeedCounters()

    def frames(self, stop: threading.Event) -> Iterator[str]:
        backoff = Backoff()
        while not stop.is_set():
            try:
                conn = websocket.create_connection(self.url, timeout=self.connect_timeout)
            except (OSError, websocket.WebSocketException) as exc:
                delay = backoff.next_delay()
                log.warning("binance connect failed error=%r retry_in=%.1fs", exc, delay)
                stop.wait(delay)
                continue
            opened = time.monotonic()
            conn.settimeout(self.silence_timeout)
            log.info("binance connected url=%s", self.url)
            try:
                while not stop.is_set():
                    text = conn.recv()  # answers pings with pongs of the same payload
                    if not text:
                        break
                    if isinstance(text, bytes):
                        text = text.decode("utf-8", errors="replace")
                    if _is_server_shutdown(text):
                        self.counters.control_events += 1
                        log.warning("binance serverShutdown received, reconnecting")
                        break
                    self.counters.messages += 1
                    if time.monotonic() - opened > self.healthy_after:
                        backoff.reset()
                    yield text
            except (OSError, websocket.WebSocketException) as exc:
                log.warning("binance connection lost error=%r", exc)
            finally:
                conn.close()
            if not stop.is_set():
                self.counters.reconnects += 1
                stop.wait(backoff.next_delay())


def _is_server_shutdown(text: str) -> bool:
    if "serverShutdown" not in text:
        return False
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    data = message.get("data", message) if isinstance(message, dict) else None
    return isinstance(data, dict) and data.get("e") == "serverShutdown"
