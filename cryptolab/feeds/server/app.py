"""A local server that speaks Binance's protocol from a tape, so the real client runs offline.

- ``GET /stream?streams=btcusdt@trade/...``: the combined-stream WebSocket. The tape's frames go
  out exactly as they are in the tape, at ``speed`` times the pace of their event times ``E``, to
  the clients subscribed to their stream (frames without a stream go to every client). Like
  Binance, the server pings every ``ping_interval``; it closes a client that has not answered a
  ping within ``pong_timeout``, that sends more than 5 messages in a second, or whose connection
  is older than ``max_connection_age`` (Binance: 24 hours).
  Clients (un)subscribe with ``{"method":"SUBSCRIBE","params":[...],"id":1}`` messages (at most
  1024 streams per connection); connection attempts beyond ``attempts_limit`` per IP within
  ``attempts_window`` and URLs longer than ``max_url_chars`` are refused. Every limit a client
  breaks is counted: :meth:`ServerStats.violations` lists them, for tests to fail on.
- ``GET /api/v3/historicalTrades?symbol=&fromId=&limit=``: the trades the replay has already
  reached (withheld ones included), in Binance's REST format, weight 25 against a per-minute
  limit, answered with ``429`` and ``Retry-After`` beyond it.
- ``GET /api/v3/exchangeInfo``: the symbols of a :class:`Market` (by default the tape's, all
  ``TRADING``), with the status they have at the point the replay has reached; weight 20.
- Times in milliseconds, or microseconds for a client that asks like Binance's opt-in
  (``&timeUnit=MICROSECOND`` on the stream, ``X-MBX-TIME-UNIT: MICROSECOND`` on REST), whatever
  unit the tape holds (:mod:`cryptolab.feeds.server.tapes`).

Playback starts once a client has stayed connected for ``start_hold`` seconds (so a quick
connectivity probe does not start it), or at once with ``start_now``. After the tape ends,
connections stay open and REST keeps answering. Faults to inject are in :class:`Faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from cryptolab.errors import CryptolabError
from cryptolab.feeds.live.config import MAX_STREAMS_PER_CONNECTION
from cryptolab.feeds.server.faults import Faults, ServerStats, Withhold
from cryptolab.feeds.server.market import (
    AttemptWindow,
    ControlRequest,
    Market,
    StatusChange,
    control_request,
)
from cryptolab.feeds.server.rest import RestApi, json_response, time_unit
from cryptolab.feeds.server.tapes import MILLISECOND, ServerTape
from cryptolab.feeds.tapes.tape import read_frames
from cryptolab.frames import server_shutdown_frame

__all__ = ["Faults", "Market", "ReplayServer", "ServerStats", "StatusChange", "Withhold"]

log = logging.getLogger(__name__)

MESSAGES_PER_SECOND = 5


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    request: web.Request
    streams: set[str]
    opened: float
    time_unit: str = MILLISECOND
    stalled: bool = False
    awaiting: dict[bytes, float] = field(default_factory=dict)
    incoming: deque[float] = field(default_factory=deque)


class ReplayServer:
    """Serve ``frames`` on ``host:port`` (0 = any free port) from a background thread."""

    def __init__(
        self,
        frames: Sequence[str | bytes],
        speed: float | None = 1.0,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 9443,
        start_now: bool = False,
        start_hold: float = 1.0,
        market: Market | None = None,
    ) -> None:
        self.tape = ServerTape(frames)
        self.market = market or Market.of(self.tape.symbols)
        self.reached_ms: int | None = None  # event time the replay has reached
        self.speed = speed
        self.faults = faults or Faults()
        self.host, self.port = host, port
        self.start_now, self.start_hold = start_now, start_hold
        self.stats = ServerStats()
        self.started = threading.Event()
        self.finished = threading.Event()
        self._withheld = {(w.symbol, w.first_id, w.last_id) for w in self.faults.withhold}
        self._clients: set[_Client] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._attempts = AttemptWindow(self.faults.attempts_limit, self.faults.attempts_window)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halt: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @classmethod
    def from_tape(cls, path: Path, **kwargs: Any) -> ReplayServer:
        return cls(list(read_frames(path)), **kwargs)

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._run, name="replay-server", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise CryptolabError(
                f"cannot serve on {self.host}:{self.port}: {self._error} (pass another --port)"
            ) from self._error
        log.info("replay server on %s trades=%d", self.ws_url, self.tape.trade_count)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._halt is not None:
            self._loop.call_soon_threadsafe(self._halt.set)
        if self._thread is not None:
            self._thread.join(timeout=15)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._halt = asyncio.Event()
        app = web.Application()
        app.router.add_get("/stream", self._stream)
        rest = RestApi(self)
        app.router.add_get("/api/v3/historicalTrades", rest.historical_trades)
        app.router.add_get("/api/v3/ping", rest.ping)
        app.router.add_get("/api/v3/exchangeInfo", rest.exchange_info)
        app.router.add_get("/api/v3/klines", rest.klines)
        # 1024 streams make a ~20 KB request line
        runner = web.AppRunner(app, handle_signals=False, access_log=None, max_line_size=1 << 16)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            if self.start_now:
                self.started.set()
            tasks = [asyncio.create_task(self._play()), *self._fault_tasks()]
            await self._halt.wait()
            for task in tasks:
                task.cancel()
            for client in list(self._clients):
                await client.ws.close(code=1001, message=b"server stopping")
        finally:
            await runner.cleanup()

    # -- playback ------------------------------------------------------------------------------
    async def _wait_started(self) -> None:
        while not self.started.is_set():
            await asyncio.sleep(0.05)

    async def _play(self) -> None:
        await self._wait_started()
        loop = asyncio.get_running_loop()
        origin: tuple[float, int] | None = None
        for n, (event_time, _text, stream, key) in enumerate(self.tape.frames):
            if self.speed is not None and event_time is not None:
                if origin is None:
                    origin = (loop.time(), event_time)
                due = origin[0] + (event_time - origin[1]) / 1e6 / self.speed
                if (delay := due - loop.time()) > 0:
                    await asyncio.sleep(delay)
            elif n % 200 == 0:
                await asyncio.sleep(0)
            if event_time is not None:
                reached = event_time // 1000  # the tape's times are held in µs
                self.reached_ms = max(self.reached_ms or reached, reached)
            if key is not None:
                self.tape.reach(*key)
                if self._is_withheld(*key):
                    self.stats.withheld += 1
                    continue
            await self._broadcast(n, stream)
        self.finished.set()
        log.info("replay finished frames=%d", len(self.tape.frames))

    def _is_withheld(self, symbol: str, trade_id: int) -> bool:
        return any(s == symbol and a <= trade_id <= b for s, a, b in self._withheld)

    async def _broadcast(self, number: int, stream: str | None) -> None:
        for client in list(self._clients):
            if client.stalled or client.ws.closed:
                continue
            if stream is None or stream in client.streams:
                text = self.tape.text_in(number, client.time_unit)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    if isinstance(text, bytes):  # a binary message (a fault to inject)
                        await client.ws.send_bytes(text)
                    else:
                        await client.ws.send_str(text)
                    self.stats.frames_sent += 1

    # -- faults --------------------------------------------------------------------------------
    def _fault_tasks(self) -> list[asyncio.Task[None]]:
        f = self.faults
        periodic: list[tuple[float | None, Callable[[], Awaitable[None]]]] = [
            (f.drop_every, self._drop_all),
            (f.shutdown_every, self._announce_shutdown),
            (f.stall_every, self._stall_all),
        ]
        return [asyncio.create_task(self._every(p, act)) for p, act in periodic if p]

    async def _every(self, period: float, action: Callable[[], Awaitable[None]]) -> None:
        await self._wait_started()
        while True:
            await asyncio.sleep(period)
            await action()

    def drop_all(self) -> None:
        """Cut every connection now, like a network failure (from any thread)."""
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._drop_all(), self._loop).result(timeout=10)

    async def _drop_all(self) -> None:
        for client in list(self._clients):
            self.stats.drops += 1
            transport = client.request.transport
            if transport is not None:
                transport.abort()  # like a network failure: no close handshake

    async def _announce_shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        frame = server_shutdown_frame(int(time.time() * 1000))
        for client in list(self._clients):
            if client.stalled or client.ws.closed:
                continue
            self.stats.shutdowns_sent += 1
            with contextlib.suppress(ConnectionError, RuntimeError):
                await client.ws.send_str(frame)
            loop.call_later(self.faults.shutdown_grace, self._close_soon, client, b"shutdown")

    def _close_soon(self, client: _Client, message: bytes) -> None:
        task = asyncio.ensure_future(self._close(client, message))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(client: _Client, message: bytes) -> None:
        await client.ws.close(code=1001, message=message)

    async def _stall_all(self) -> None:
        for client in list(self._clients):
            if not client.stalled:
                self.stats.stalls += 1
                client.stalled = True

    # -- WebSocket -----------------------------------------------------------------------------
    async def _stream(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        attempts = self._attempts.attempt(request.remote or "?", loop.time())
        self.stats.max_attempts_in_window = max(self.stats.max_attempts_in_window, attempts)
        if attempts > self.faults.attempts_limit:
            self.stats.attempts_refused += 1
            return json_response({"code": -1003, "msg": "Too many connection attempts."}, 429)
        if len(str(request.url)) > self.faults.max_url_chars:
            self.stats.urls_too_long += 1
            return json_response({"code": -1, "msg": "URL too long"}, 414)
        streams = [s for s in request.query.get("streams", "").split("/") if s]
        if len(streams) > MAX_STREAMS_PER_CONNECTION:
            self.stats.stream_limit_refusals += 1
            return json_response(
                {"code": -1, "msg": f"at most {MAX_STREAMS_PER_CONNECTION} streams"}, 400
            )
        unit = time_unit(request.query.get("timeUnit"))
        if unit is None:
            return json_response(
                {"code": -1, "msg": "timeUnit must be MILLISECOND or MICROSECOND"}, 400
            )
        ws = web.WebSocketResponse(autoping=False, heartbeat=None, max_msg_size=1 << 16)
        await ws.prepare(request)
        client = _Client(ws, request, set(streams), loop.time(), unit)
        self._clients.add(client)
        self.stats.connections += 1
        self.stats.open += 1
        self.stats.largest_subscription = max(self.stats.largest_subscription, len(streams))
        if not self.started.is_set():
            loop.call_later(self.start_hold, self._start_if_still_there, client)
        keepalive = asyncio.create_task(self._keepalive(client))
        try:
            async for msg in ws:
                if not await self._on_message(client, msg.type, msg.data):
                    break
        finally:
            keepalive.cancel()
            self._clients.discard(client)
            self.stats.open -= 1
        return ws

    def _start_if_still_there(self, client: _Client) -> None:
        if client in self._clients and not client.ws.closed:
            self.started.set()

    async def _on_message(self, client: _Client, kind: WSMsgType, data: Any) -> bool:
        now = asyncio.get_running_loop().time()
        client.incoming.append(now)
        while client.incoming[0] <= now - 1.0:
            client.incoming.popleft()
        count = len(client.incoming)
        self.stats.max_messages_per_second = max(self.stats.max_messages_per_second, count)
        if count > MESSAGES_PER_SECOND:
            self.stats.rate_violations += 1
            await client.ws.close(code=1008, message=b"too many messages")
            return False
        if kind is WSMsgType.PING:
            await client.ws.pong(data)
        elif kind is WSMsgType.TEXT:
            await self._control(client, data)
        elif kind is WSMsgType.PONG:
            self.stats.pongs_received += 1
            sent = client.awaiting.get(bytes(data))
            if sent is not None:  # this pong also answers every older ping
                client.awaiting = {p: t for p, t in client.awaiting.items() if t > sent}
        return True

    async def _control(self, client: _Client, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, answered like Binance."""
        request = control_request(text)
        if not isinstance(request, ControlRequest):
            self.stats.bad_requests += 1
            await _send(client, {"error": {"code": 2, "msg": request}, "id": None})
            return
        self.stats.control_requests += 1
        reply: dict[str, Any] = {"result": None, "id": request.id}
        if request.method == "SUBSCRIBE":
            wanted = client.streams | set(request.streams)
            if len(wanted) > MAX_STREAMS_PER_CONNECTION:
                self.stats.stream_limit_refusals += 1
                reply = {
                    "error": {"code": 2, "msg": "Invalid request: too many streams"},
                    "id": request.id,
                }
            else:
                client.streams = wanted
                self.stats.largest_subscription = max(self.stats.largest_subscription, len(wanted))
        elif request.method == "UNSUBSCRIBE":
            client.streams = client.streams - set(request.streams)
        else:
            reply["result"] = sorted(client.streams)
        await _send(client, reply)

    def subscriptions(self) -> list[set[str]]:
        """The streams of each open connection now (read from any thread)."""
        if self._loop is None:
            return []

        async def collect() -> list[set[str]]:
            return [set(c.streams) for c in self._clients if not c.ws.closed]

        return asyncio.run_coroutine_threadsafe(collect(), self._loop).result(timeout=10)

    async def _keepalive(self, client: _Client) -> None:
        """Pings, the pong deadline and the connection age limit."""
        f = self.faults
        loop = asyncio.get_running_loop()
        next_ping, number = loop.time() + f.ping_interval, 0
        while not client.ws.closed:
            await asyncio.sleep(min(0.1, f.ping_interval / 2))
            now = loop.time()
            if now - client.opened >= f.max_connection_age:
                self.stats.age_cuts += 1
                await client.ws.close(code=1000, message=b"connection age limit")
                return
            if client.stalled:
                continue
            if now >= next_ping:
                number += 1
                payload = str(number).encode()
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await client.ws.ping(payload)
                client.awaiting[payload] = now
                self.stats.pings_sent += 1
                next_ping = now + f.ping_interval
            if client.awaiting and min(client.awaiting.values()) < now - f.pong_timeout:
                self.stats.pong_timeouts += 1
                await client.ws.close(code=1008, message=b"pong timeout")
                return


async def _send(client: _Client, body: Any) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await client.ws.send_str(orjson.dumps(body).decode())
