"""A local server that speaks Binance's protocol from a tape, so the real client runs offline.

- ``GET /stream?streams=btcusdt@trade/...``: the combined-stream WebSocket. The tape's frames go
  out exactly as they are in the tape, at ``speed`` times the pace of their event times ``E``, to
  the clients subscribed to their stream (frames without a stream go to every client). Like
  Binance, the server pings every ``ping_interval``; it closes a client that has not answered a
  ping within ``pong_timeout``, that sends more than 5 messages in a second, or whose connection
  is older than ``max_connection_age`` (Binance: 24 hours).
- ``GET /api/v3/historicalTrades?symbol=&fromId=&limit=``: the trades the replay has already
  reached (withheld ones included), in Binance's REST format, weight 25 against a per-minute
  limit, answered with ``429`` and ``Retry-After`` beyond it.
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
from cryptolab.feeds.server.tapes import KLINE_MS, MICROSECOND, MILLISECOND, ServerTape, klines
from cryptolab.feeds.tapes.tape import read_frames
from cryptolab.frames import server_shutdown_frame

__all__ = ["Faults", "ReplayServer", "ServerStats", "Withhold"]

log = logging.getLogger(__name__)

WEIGHT = 25
MESSAGES_PER_SECOND = 5


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    request: web.Request
    streams: frozenset[str]
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
    ) -> None:
        self.tape = ServerTape(frames)
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
        self._weights: deque[float] = deque()
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
        app.router.add_get("/api/v3/historicalTrades", self._historical_trades)
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/klines", self._klines)
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
        streams = [s for s in request.query.get("streams", "").split("/") if s]
        if not streams or len(streams) > MAX_STREAMS_PER_CONNECTION:
            return _json(
                {"code": -1, "msg": f"1 to {MAX_STREAMS_PER_CONNECTION} streams required"}, 400
            )
        unit = _time_unit(request.query.get("timeUnit"))
        if unit is None:
            return _json({"code": -1, "msg": "timeUnit must be MILLISECOND or MICROSECOND"}, 400)
        ws = web.WebSocketResponse(autoping=False, heartbeat=None, max_msg_size=1 << 16)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        client = _Client(ws, request, frozenset(streams), loop.time(), unit)
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
        elif kind is WSMsgType.PONG:
            self.stats.pongs_received += 1
            sent = client.awaiting.get(bytes(data))
            if sent is not None:  # this pong also answers every older ping
                client.awaiting = {p: t for p, t in client.awaiting.items() if t > sent}
        return True

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

    # -- REST ----------------------------------------------------------------------------------
    async def _ping(self, request: web.Request) -> web.Response:
        return _json({})

    async def _historical_trades(self, request: web.Request) -> web.Response:
        self.stats.rest_requests += 1
        now = time.monotonic()
        while self._weights and self._weights[0] <= now - 60.0:
            self._weights.popleft()
        used = WEIGHT * len(self._weights)
        if (
            self.stats.rest_requests <= self.faults.rest_fail_first
            or used + WEIGHT > self.faults.weight_limit
        ):
            self.stats.rest_throttled += 1
            headers = {"Retry-After": str(self.faults.retry_after)}
            return _json({"code": -1003, "msg": "Too many requests."}, 429, headers)
        self._weights.append(now)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used + WEIGHT)}
        symbol = request.query.get("symbol", "").upper()
        try:
            limit = int(request.query.get("limit", "500"))
            from_id = request.query.get("fromId")
            start = None if from_id is None else int(from_id)
        except ValueError:
            return _json({"code": -1100, "msg": "Illegal characters in parameter."}, 400, headers)
        if symbol not in self.tape.symbols:
            return _json({"code": -1121, "msg": "Invalid symbol."}, 400, headers)
        if not 1 <= limit <= 1000:
            return _json({"code": -1100, "msg": "limit must be 1..1000"}, 400, headers)
        unit = _time_unit(request.headers.get("X-MBX-TIME-UNIT"))
        if unit is None:
            return _json({"code": -1100, "msg": "Invalid time unit."}, 400, headers)
        return _json(self.tape.history(symbol, start, limit, unit), headers=headers)

    async def _klines(self, request: web.Request) -> web.Response:
        """``/api/v3/klines``: klines of the trades reached so far (Binance's row format)."""
        symbol = request.query.get("symbol", "").upper()
        width = KLINE_MS.get(request.query.get("interval", ""))
        unit = _time_unit(request.headers.get("X-MBX-TIME-UNIT"))
        try:
            limit = int(request.query.get("limit", "500"))
            start = int(request.query.get("startTime", "0"))
            end = int(request.query.get("endTime", str(2**62)))
        except ValueError:
            return _json({"code": -1100, "msg": "Illegal characters in parameter."}, 400)
        if symbol not in self.tape.symbols:
            return _json({"code": -1121, "msg": "Invalid symbol."}, 400)
        if width is None or unit is None or not 1 <= limit <= 1000:
            return _json({"code": -1120, "msg": "Invalid interval, time unit or limit."}, 400)
        return _json(klines(self.tape.reached(symbol), width, start, end, unit)[:limit])


def _time_unit(value: str | None) -> str | None:
    """Binance's ``timeUnit``: absent = milliseconds; MILLISECOND or MICROSECOND in any case."""
    if value is None:
        return MILLISECOND
    unit = value.strip().upper()
    return unit if unit in (MILLISECOND, MICROSECOND) else None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )
