"""A *shard* owns up to 1024 streams and keeps them flowing into the sequencer through one
connection at a time, except while it switches over: before Binance's 24-hour cut, or when the
server announces ``serverShutdown``, the shard opens the next connection *first*, keeps handing on
the old connection's trades and holds the new one's, and closes the old one once the new one has
every stream subscribed and the old one has caught up with it (per symbol) — so no trade is
missed, and the overlap is dropped as duplicates by the sequencer. The shard's symbols may change
while it runs (listings, delistings): each connection is asked to (un)subscribe the difference.
A connection that closes, fails, or goes silent (no frame and no ping for ``silence_timeout``) is
replaced after a capped, jittered, exponential backoff; the sequencer is told, so that it can
check over REST what the outage may have hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import aiohttp

from cryptolab.feeds.live.config import FeedConfig
from cryptolab.feeds.live.connection import (
    AttemptLimiter,
    Backoff,
    Connection,
    Event,
    Kind,
    opening_url,
)
from cryptolab.feeds.live.counters import FeedCounters
from cryptolab.feeds.live.sequencer import Sequencer
from cryptolab.frames import trade_key

log = logging.getLogger(__name__)


class Shard:
    """Keeps ``symbols``' streams flowing into the sequencer through one connection at a time;
    ends when its symbols become empty (:meth:`set_symbols`) or the feed stops."""

    def __init__(
        self,
        index: int,
        ws_url: str,
        symbols: Sequence[str],
        session: aiohttp.ClientSession,
        sequencer: Sequencer,
        counters: FeedCounters,
        config: FeedConfig,
        attempts: AttemptLimiter,
    ) -> None:
        self.index = index
        self.ws_url = ws_url
        self.symbols: frozenset[str] = frozenset(s.upper() for s in symbols)
        self.session = session
        self.sequencer = sequencer
        self.counters = counters
        self.config = config
        self.attempts = attempts
        self.backoff = Backoff(config.backoff_base, config.backoff_cap)
        self.inbox: asyncio.Queue[Event] = asyncio.Queue()
        self.active: Connection | None = None
        self.incoming: Connection | None = None  # the next connection, during a switch-over
        self._opening: asyncio.Task[Connection | None] | None = None
        self._overlap_started = 0.0
        self._held: list[tuple[str | bytes, tuple[str, int] | None]] = []
        self._first_new: dict[str, int] = {}  # first trade id per symbol on the new connection
        self._last_old: dict[str, int] = {}  # last trade id per symbol on the active connection
        self._next_switch = 0.0
        self._numbers = 0
        self._next_sync = 0.0
        self._stopping: asyncio.Event | None = None
        self.retired_messages = 0  # messages sent by connections already closed
        self.max_per_second = 0  # most messages one connection sent within a second

    def set_symbols(self, symbols: frozenset[str]) -> None:
        """From now on follow ``symbols`` (each connection is asked for the difference)."""
        self.symbols = symbols
        self._next_sync = 0.0

    def connections(self) -> list[Connection]:
        return [c for c in (self.active, self.incoming) if c is not None and not c.released]

    def messages_sent(self) -> int:
        """Pongs and subscription requests sent by every connection of this shard so far."""
        live = sum(c.pongs_sent + c.requests_sent for c in self.connections())
        return self.retired_messages + live

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # -- opening -------------------------------------------------------------------------------
    async def _open(self) -> Connection | None:
        """One connection attempt (within the attempt limit); None if it failed."""
        while (wait := self.attempts.delay()) > 0:
            log.warning("connection attempt limit reached shard=%d waiting=%.0fs", self.index, wait)
            if await self._sleep(wait):
                return None
        self.attempts.record()
        self.counters.connect_attempts += 1
        url, initial = opening_url(self.ws_url, sorted(self.symbols), self.config.time_unit)
        try:
            async with asyncio.timeout(self.config.connect_timeout):  # TCP + TLS + handshake
                ws = await self.session.ws_connect(
                    url,
                    autoping=False,
                    heartbeat=None,
                    timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                    max_msg_size=0,
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("binance connect failed shard=%d error=%r", self.index, exc)
            return None
        self._numbers += 1
        self.counters.connections += 1
        log.info(
            "binance connected shard=%d conn=%d streams=%d in_url=%d",
            self.index, self._numbers, len(self.symbols), len(initial),
        )  # fmt: skip
        connection = Connection(
            ws, self._numbers, self.inbox, self.config.control_interval, initial
        )
        connection.sync(self.symbols)
        return connection

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, or return True at once when the feed is stopping."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=max(0.0, seconds))
        return self._stopping.is_set()

    async def _reconnect(self) -> Connection | None:
        """Open a replacement after a backoff, retrying until it works or the feed stops."""
        while not await self._sleep(self.backoff.next_delay()):
            connection = await self._open()
            if connection is not None:
                return connection
        return None

    async def _retire(self, connection: Connection | None) -> None:
        if connection is not None and not connection.released:
            connection.released = True
            self.counters.connections -= 1
            self.retired_messages += connection.pongs_sent + connection.requests_sent
            self.max_per_second = max(self.max_per_second, connection.max_per_second)
            await connection.close()

    async def _cancel_opening(self) -> None:
        """Abandon a switch-over connection still being opened (or opened but not yet used)."""
        opening, self._opening = self._opening, None
        if opening is None:
            return
        if not opening.done():
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
        elif opening.exception() is None:
            await self._retire(opening.result())

    def _activate(self, connection: Connection | None) -> None:
        self.active = connection
        if connection is not None:
            connection.was_active = True

    # -- main loop -----------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        self._stopping = stopping
        self._activate(await self._open() or await self._reconnect())
        if self.active is not None:
            self.sequencer.connection_restored(self.symbols, self._now())
        try:
            while self.active is not None and self.symbols and not stopping.is_set():
                try:
                    event = await asyncio.wait_for(self.inbox.get(), timeout=self.config.tick)
                except TimeoutError:
                    event = None
                if event is not None:
                    await self._on_event(*event)
                if self.active is not None:
                    await self._tick()
        finally:
            await self._cancel_opening()
            await self._retire(self.incoming)
            await self._retire(self.active)

    async def _on_event(self, connection: Connection, kind: Kind, payload: str | bytes) -> None:
        if kind is Kind.FRAME:
            self.counters.messages += 1
            key = trade_key(payload)
            if connection is self.incoming:
                self._held.append((payload, key))
                if key is not None:
                    self._first_new.setdefault(key[0], key[1])
                return
            if not connection.was_active:
                return  # late frames of an abandoned switch-over
            if key is not None and connection is self.active:
                self._last_old[key[0]] = key[1]
            self.sequencer.on_live(payload, key)
        elif isinstance(payload, bytes):  # only frames come as bytes
            return
        elif kind is Kind.SHUTDOWN:
            self.counters.server_shutdowns += 1
            log.warning("binance serverShutdown shard=%d conn=%d", self.index, connection.number)
        elif connection is self.active:
            if self.incoming is not None:  # the old one went away mid switch-over: finish it
                await self._finish_switch()
            else:
                await self._lose_active(payload)
        elif connection is self.incoming:
            log.warning("new connection closed during switch-over reason=%s", payload)
            await self._abort_switch()

    def _sync(self, now: float) -> None:
        """Ask each connection for the subscriptions it lacks (at most every tick)."""
        if now < self._next_sync:
            return
        self._next_sync = now + self.config.tick
        for connection in self.connections():
            connection.sync(self.symbols)
            self.max_per_second = max(self.max_per_second, connection.max_per_second)

    async def _tick(self) -> None:
        assert self.active is not None
        now = self._now()
        self._sync(now)
        if now - self.active.last_seen > self.config.silence_timeout:
            self.counters.watchdog_timeouts += 1
            silent = now - self.active.last_seen
            await self._lose_active(f"silent for {silent:.1f}s (watchdog)")
            return
        if self.active.age >= self.config.healthy_after:
            self.backoff.reset()
        if self._opening is not None and self._opening.done():
            self._start_overlap(self._opening.result())
        elif self.incoming is not None:
            elapsed = now - self._overlap_started
            caught_up = self.incoming.settled(self.symbols) and all(
                self._last_old.get(symbol, -1) >= first - 1
                for symbol, first in self._first_new.items()
            )
            if elapsed >= self.config.max_overlap or (
                elapsed >= self.config.min_overlap and caught_up
            ):
                await self._finish_switch()
        elif self._opening is None and now >= self._next_switch and self._switch_due():
            self._opening = asyncio.get_running_loop().create_task(self._open())

    def _switch_due(self) -> bool:
        assert self.active is not None
        return self.active.shutdown_announced or self.active.age >= self.config.rotate_after

    # -- switch-over and loss ------------------------------------------------------------------
    def _start_overlap(self, connection: Connection | None) -> None:
        self._opening = None
        if connection is None:
            self._next_switch = self._now() + self.backoff.next_delay()
            return
        self.incoming = connection
        self._overlap_started = self._now()
        self._held, self._first_new = [], {}

    async def _finish_switch(self) -> None:
        old, new = self.active, self.incoming
        assert new is not None
        self.incoming = None
        self._activate(new)
        assert self.active is not None
        self.counters.rotations += 1
        reason = "serverShutdown" if old is not None and old.shutdown_announced else "rotation"
        log.info(
            "switched over shard=%d from conn=%d to conn=%d reason=%s held=%d",
            self.index,
            old.number if old else -1,
            self.active.number,
            reason,
            len(self._held),
        )
        await self._retire(old)
        held, self._held = self._held, []
        self._last_old = {}
        for payload, key in held:
            if key is not None:
                self._last_old[key[0]] = key[1]
            self.sequencer.on_live(payload, key)

    async def _abort_switch(self) -> None:
        await self._retire(self.incoming)
        self.incoming, self._held = None, []
        self._next_switch = self._now() + self.backoff.next_delay()

    async def _lose_active(self, reason: str) -> None:
        lost = self.active
        assert lost is not None
        log.warning(
            "binance connection lost shard=%d conn=%d age=%.1fs reason=%s",
            self.index,
            lost.number,
            lost.age,
            reason,
        )
        self.counters.reconnects += 1
        self.sequencer.connection_lost(self.symbols)
        await self._cancel_opening()
        if self.incoming is not None:
            await self._abort_switch()
        await self._retire(lost)
        self.active = None
        self._last_old = {}
        self._activate(await self._reconnect())
        if self.active is not None:
            self.sequencer.connection_restored(self.symbols, self._now())
