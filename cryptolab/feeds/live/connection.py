"""WebSocket connections of the live client: the URL, one connection's reader (frames and
pongs), the reconnect backoff and the connection-attempt limit."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from cryptolab.feeds.live.config import MAX_STREAMS_PER_CONNECTION
from cryptolab.frames import is_server_shutdown

log = logging.getLogger(__name__)


def stream_url(base_url: str, symbols: Sequence[str], time_unit: str = "MILLISECOND") -> str:
    """Combined-stream URL for the ``@trade`` streams of ``symbols`` (lowercased); with
    ``time_unit="MICROSECOND"`` Binance's opt-in ``timeUnit=MICROSECOND`` (``E`` and ``T`` in
    µs; milliseconds, the default, add nothing)."""
    if not symbols:
        raise ValueError("at least one symbol is required")
    if len(symbols) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"at most {MAX_STREAMS_PER_CONNECTION} streams per connection")
    streams = "/".join(f"{s.lower()}@trade" for s in symbols)
    unit = "" if time_unit == "MILLISECOND" else f"&timeUnit={time_unit}"
    return f"{base_url.rstrip('/')}/stream?streams={streams}{unit}"


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
class AttemptLimiter:
    """At most ``limit`` connection attempts in any ``window`` seconds, shared by all shards
    (Binance allows 300 per 5 minutes per IP)."""

    limit: int = 250
    window: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _attempts: deque[float] = field(default_factory=deque)

    def delay(self) -> float:
        now = self.clock()
        while self._attempts and self._attempts[0] <= now - self.window:
            self._attempts.popleft()
        if len(self._attempts) < self.limit:
            return 0.0
        return self._attempts[0] + self.window - now

    def record(self) -> None:
        self._attempts.append(self.clock())


class Kind(enum.Enum):
    FRAME = "frame"
    SHUTDOWN = "shutdown"
    CLOSED = "closed"


Event = tuple["Connection", Kind, str | bytes]


class Connection:
    """One open WebSocket: a reader task puts its frames on the shard's inbox and answers pings
    with pongs carrying the same payload, never more often than ``control_interval`` (bursts of
    pings are answered once, with the newest payload)."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        number: int,
        inbox: asyncio.Queue[Event],
        control_interval: float,
    ) -> None:
        self.ws = ws
        self.number = number
        self.inbox = inbox
        self.control_interval = control_interval
        loop = asyncio.get_running_loop()
        self.clock = loop.time
        self.opened_at = self.last_seen = self.clock()
        self.shutdown_announced = False
        self.closed = False
        self.was_active = False  # frames of a never-promoted connection are not handed on
        self.released = False
        self.pongs_sent = 0
        self._pong_payload: bytes | None = None
        self._last_control = -1e9
        self._pong_task: asyncio.Task[None] | None = None
        self._reader = loop.create_task(self._read(), name=f"ws-{number}")

    @property
    def age(self) -> float:
        return self.clock() - self.opened_at

    async def _read(self) -> None:
        reason = "closed"
        try:
            while True:
                msg = await self.ws.receive()
                self.last_seen = self.clock()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._put(msg.data)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    self._put_binary(msg.data)
                elif msg.type is aiohttp.WSMsgType.PING:
                    self._pong(msg.data)
                elif msg.type is aiohttp.WSMsgType.PONG:
                    continue
                else:  # CLOSE, CLOSING, CLOSED, ERROR
                    if msg.type is aiohttp.WSMsgType.ERROR:
                        reason = f"error {self.ws.exception()!r}"
                    else:
                        reason = f"{msg.type.name.lower()} code={self.ws.close_code}"
                    break
        except (aiohttp.ClientError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            self.closed = True
            self.inbox.put_nowait((self, Kind.CLOSED, reason))

    def _put(self, text: str) -> None:
        if is_server_shutdown(text):
            self.shutdown_announced = True
            self.inbox.put_nowait((self, Kind.SHUTDOWN, text))
        else:
            self.inbox.put_nowait((self, Kind.FRAME, text))

    def _put_binary(self, data: bytes) -> None:
        """Binance sends text; a binary message that is UTF-8 is the same frame as text. One that
        is not is handed on as bytes, so the dead-letter record keeps them exactly."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.inbox.put_nowait((self, Kind.FRAME, data))
            return
        self._put(text)

    def _pong(self, payload: bytes) -> None:
        self._pong_payload = payload
        if self._pong_task is None or self._pong_task.done():
            self._pong_task = asyncio.get_running_loop().create_task(self._send_pongs())

    async def _send_pongs(self) -> None:
        while self._pong_payload is not None and not self.closed:
            wait = self._last_control + self.control_interval - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            payload, self._pong_payload = self._pong_payload, None
            if payload is None or self.closed:
                return
            self._last_control = self.clock()
            try:
                await self.ws.pong(payload)
            except (aiohttp.ClientError, OSError, RuntimeError):
                return
            self.pongs_sent += 1

    async def close(self) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), timeout=2.0)
        for task in (self._reader, self._pong_task):
            if task is not None and not task.done():
                task.cancel()
