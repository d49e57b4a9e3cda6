"""WebSocket connections of the live client: the URL, one connection (its reader, and one sender
for pongs and SUBSCRIBE/UNSUBSCRIBE requests within Binance's 5 messages a second), the
reconnect backoff and the connection-attempt limit.

A connection opens with as many of its streams in the URL as fit in :data:`MAX_URL_CHARS`
(Binance refuses URLs past ~8 KB) and subscribes the rest, and later changes, with requests::

    {"method":"SUBSCRIBE","params":["btcusdt@trade","ethusdt@trade"],"id":1}

answered by ``{"result":null,"id":1}`` (see :func:`cryptolab.frames.control_reply`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

import aiohttp
import orjson

from cryptolab.feeds.live.config import MAX_STREAMS_PER_CONNECTION
from cryptolab.frames import control_reply, is_server_shutdown

log = logging.getLogger(__name__)


MAX_URL_CHARS = 4000
"""Longest opening URL the client makes: Binance is reported to refuse URLs past ~8,000
characters; the streams that do not fit are subscribed with requests."""
SUBSCRIBE_CHUNK = 200
"""Streams per SUBSCRIBE/UNSUBSCRIBE request (~4 KB): very large requests are reported to fail."""
RETRY_AFTER_REFUSAL = 5.0
"""Seconds before a connection retries requests after the server refused one."""
SUBSCRIBE = "SUBSCRIBE"
UNSUBSCRIBE = "UNSUBSCRIBE"


def stream_name(symbol: str) -> str:
    return f"{symbol.lower()}@trade"


def stream_url(base_url: str, symbols: Sequence[str], time_unit: str = "MILLISECOND") -> str:
    """Combined-stream URL for the ``@trade`` streams of ``symbols`` (lowercased); with
    ``time_unit="MICROSECOND"`` Binance's opt-in ``timeUnit=MICROSECOND`` (``E`` and ``T`` in
    µs; milliseconds, the default, add nothing)."""
    if not symbols:
        raise ValueError("at least one symbol is required")
    if len(symbols) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"at most {MAX_STREAMS_PER_CONNECTION} streams per connection")
    streams = "/".join(stream_name(s) for s in symbols)
    unit = "" if time_unit == "MILLISECOND" else f"&timeUnit={time_unit}"
    return f"{base_url.rstrip('/')}/stream?streams={streams}{unit}"


def opening_url(
    base_url: str,
    symbols: Sequence[str],
    time_unit: str = "MILLISECOND",
    max_chars: int = MAX_URL_CHARS,
) -> tuple[str, tuple[str, ...]]:
    """The URL to open a connection with: the first of ``symbols`` whose streams fit in
    ``max_chars`` (at least one), and those symbols; the rest are subscribed afterwards."""
    if not symbols:
        raise ValueError("at least one symbol is required")
    length = len(stream_url(base_url, symbols[:1], time_unit))
    count = 1
    for symbol in symbols[1:MAX_STREAMS_PER_CONNECTION]:
        length += len(stream_name(symbol)) + 1
        if length > max_chars:
            break
        count += 1
    chosen = tuple(symbols[:count])
    return stream_url(base_url, chosen, time_unit), chosen


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

    def recent(self) -> int:
        """Attempts within the window now."""
        self.delay()
        return len(self._attempts)


class Kind(enum.Enum):
    FRAME = "frame"
    SHUTDOWN = "shutdown"
    CLOSED = "closed"


Event = tuple["Connection", Kind, str | bytes]


class Connection:
    """One open WebSocket. A reader task puts its frames on the shard's inbox; one sender task
    sends everything the client says — pongs with the payload of the newest ping (a burst of
    pings is answered once), and subscription requests — never two messages less than
    ``control_interval`` apart (Binance: at most 5 incoming messages a second per connection).

    ``subscribed`` holds the symbols whose streams the server confirmed (those in the opening
    URL, then each answered request); :meth:`sync` asks for the difference to a wanted set."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        number: int,
        inbox: asyncio.Queue[Event],
        control_interval: float,
        symbols: Iterable[str] = (),
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
        self.subscribed: set[str] = set(symbols)
        self.pongs_sent = 0
        self.requests_sent = 0
        self.refusals = 0
        self.max_per_second = 0  # most messages this client sent within one second
        self._requests: dict[int, tuple[str, tuple[str, ...]]] = {}  # sent or queued, unanswered
        self._queue: deque[int] = deque()
        self._next_id = 1
        self._retry_at = 0.0
        self._sent: deque[float] = deque()
        self._pong_payload: bytes | None = None
        self._last_control = -1e9
        self._wake = asyncio.Event()
        self._reader = loop.create_task(self._read(), name=f"ws-{number}")
        self._sender = loop.create_task(self._send_loop(), name=f"ws-{number}-send")

    @property
    def age(self) -> float:
        return self.clock() - self.opened_at

    # -- reading -------------------------------------------------------------------------------
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
            self._wake.set()
            self.inbox.put_nowait((self, Kind.CLOSED, reason))

    def _put(self, text: str) -> None:
        if text.startswith('{"stream"'):
            self.inbox.put_nowait((self, Kind.FRAME, text))
        elif is_server_shutdown(text):
            self.shutdown_announced = True
            self.inbox.put_nowait((self, Kind.SHUTDOWN, text))
        elif (reply := control_reply(text)) is not None:
            self._answered(*reply)
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

    # -- subscriptions -------------------------------------------------------------------------
    def sync(self, wanted: Collection[str]) -> None:
        """Request (un)subscriptions so that ``subscribed`` becomes ``wanted``: what is already
        asked for is not asked again; unsubscriptions go first (the 1024-stream limit)."""
        if self.closed or self.clock() < self._retry_at:
            return
        asked: dict[str, set[str]] = {SUBSCRIBE: set(), UNSUBSCRIBE: set()}
        for method, asked_for in self._requests.values():
            asked[method].update(asked_for)
        drop = sorted(self.subscribed.difference(wanted) - asked[UNSUBSCRIBE])
        add = sorted(set(wanted) - self.subscribed - asked[SUBSCRIBE])
        for method, names in ((UNSUBSCRIBE, drop), (SUBSCRIBE, add)):
            for start in range(0, len(names), SUBSCRIBE_CHUNK):
                self._request(method, tuple(names[start : start + SUBSCRIBE_CHUNK]))

    def settled(self, wanted: Collection[str]) -> bool:
        """Every request answered and exactly ``wanted`` subscribed."""
        return not self._requests and self.subscribed == set(wanted)

    def _request(self, method: str, symbols: tuple[str, ...]) -> None:
        request_id, self._next_id = self._next_id, self._next_id + 1
        self._requests[request_id] = (method, symbols)
        self._queue.append(request_id)
        self._wake.set()

    def _answered(self, request_id: int, error: str | None) -> None:
        method, symbols = self._requests.pop(request_id, ("", ()))
        if not method:
            return
        if error is not None:
            self.refusals += 1
            self._retry_at = self.clock() + RETRY_AFTER_REFUSAL
            log.warning(
                "binance refused %s conn=%d streams=%d error=%s retry_in=%.0fs",
                method, self.number, len(symbols), error, RETRY_AFTER_REFUSAL,
            )  # fmt: skip
        elif method == SUBSCRIBE:
            self.subscribed.update(symbols)
        else:
            self.subscribed.difference_update(symbols)

    # -- sending -------------------------------------------------------------------------------
    def _pong(self, payload: bytes) -> None:
        self._pong_payload = payload
        self._wake.set()

    async def _send_loop(self) -> None:
        """Pongs and queued requests in turn (neither starves the other), at most one message
        per ``control_interval``."""
        pong_next = True
        while not self.closed:
            if self._pong_payload is None and not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._last_control + self.control_interval - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if self._pong_payload is not None and (pong_next or not self._queue):
                payload, self._pong_payload = self._pong_payload, None
                if not await self._send(self.ws.pong(payload)):
                    return
                self.pongs_sent += 1
                pong_next = False
            else:
                pong_next = True
                request_id = self._queue.popleft()
                method, symbols = self._requests[request_id]
                text = orjson.dumps(
                    {
                        "method": method,
                        "params": [stream_name(s) for s in symbols],
                        "id": request_id,
                    }
                ).decode()
                if not await self._send(self.ws.send_str(text)):
                    return
                self.requests_sent += 1

    async def _send(self, sending: Awaitable[None]) -> bool:
        now = self._last_control = self.clock()
        self._sent.append(now)
        while self._sent[0] <= now - 1.0:
            self._sent.popleft()
        self.max_per_second = max(self.max_per_second, len(self._sent))
        try:
            await sending
        except (aiohttp.ClientError, OSError, RuntimeError):
            return False
        return True

    async def close(self) -> None:
        self.closed = True
        self._wake.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), timeout=2.0)
        for task in (self._reader, self._sender):
            if not task.done():
                task.cancel()
