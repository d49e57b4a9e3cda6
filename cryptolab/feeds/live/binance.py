"""Live Binance trades, gap-free: combined-stream WebSockets plus REST backfill.

``<ws_url>/stream?streams=btcusdt@trade/ethusdt@trade`` wraps each event as
``{"stream": "btcusdt@trade", "data": {...}}``. :class:`BinanceFeed` yields every trade of the
requested symbols exactly once, per symbol in trade-id order:

- symbols are sharded over connections of at most 1024 streams (:mod:`.shard`); with a
  ``follow`` function (``symbols=all``: exchangeInfo, :mod:`.universe`) the list is re-read
  periodically: new symbols are subscribed on the shards with room (or a new one), delisted ones
  unsubscribed (their data stays in the store);
- pings are answered with pongs of the same payload, and subscriptions requested, never more than
  5 messages per second per connection;
- lost or silent connections are replaced with capped, jittered exponential backoff, within
  Binance's 300 connection attempts per 5 minutes; connections are rotated before the 24-hour
  cut and on ``serverShutdown`` by opening the next one first (:mod:`.shard`);
- gaps in each symbol's consecutive trade ids — after a reconnect, or across restarts, since the
  last id per symbol is saved under the data directory — are filled from REST
  ``historicalTrades`` within the request-weight limit (:mod:`.backfill`, :mod:`.sequencer`);
- duplicates are dropped before anything reaches Kafka.

The network work runs on an asyncio event loop in a background thread; :meth:`BinanceFeed.frames`
is a plain iterator over the result, so the producer thread consumes it like a tape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

import aiohttp
import websocket

from cryptolab.errors import FeedError
from cryptolab.feeds.live.backfill import Backfiller, RestClient, WeightBudget
from cryptolab.feeds.live.config import MAX_STREAMS_PER_CONNECTION, FeedConfig
from cryptolab.feeds.live.connection import AttemptLimiter, Backoff, opening_url, stream_url
from cryptolab.feeds.live.counters import FeedCounters
from cryptolab.feeds.live.sequencer import BackfillJob, Sequencer
from cryptolab.feeds.live.shard import Shard
from cryptolab.feeds.live.state import STATE_FILE, FeedState
from cryptolab.feeds.live.universe import fetch_listings, trading_symbols
from cryptolab.settings import Settings

__all__ = [
    "MAX_STREAMS_PER_CONNECTION",
    "Backoff",
    "BinanceFeed",
    "FeedConfig",
    "FeedCounters",
    "FeedState",
    "plan_shards",
    "probe",
    "stream_url",
]

log = logging.getLogger(__name__)


def probe(base_url: str, symbols: Sequence[str], timeout: float) -> str | None:
    """Try to open the stream once; None when it works, else the reason it does not."""
    try:
        conn = websocket.create_connection(opening_url(base_url, symbols)[0], timeout=timeout)
    except (OSError, websocket.WebSocketException) as exc:
        return f"{type(exc).__name__}: {exc}"
    conn.close()
    return None


_END = object()


def plan_shards(
    current: Sequence[frozenset[str]], wanted: Collection[str], capacity: int
) -> list[frozenset[str]]:
    """Each existing shard's symbols after a change to ``wanted`` (same order; empty = the shard
    ends), then the symbols of new shards. Symbols stay where they are; new ones fill the
    shards with the most room first, then new shards of at most ``capacity``."""
    wanted = set(wanted)
    result = [set(symbols & wanted) for symbols in current]
    placed = set().union(*result) if result else set()
    new = sorted(wanted - placed)
    for index in sorted(range(len(result)), key=lambda i: len(result[i])):
        if not new:
            break
        if not result[index] and not current[index] & wanted:
            continue  # an emptied shard ends; it takes no new symbols
        room = capacity - len(result[index])
        result[index].update(new[:room])
        new = new[max(room, 0) :]
    result += [set(new[i : i + capacity]) for i in range(0, len(new), capacity)]
    return [frozenset(symbols) for symbols in result]


class BinanceFeed:
    """Yields raw trade frames — live ones exactly as received, backfilled ones tagged (see
    :data:`~cryptolab.frames.BACKFILL_TAG`) — until ``stop`` is set; then finishes
    pending backfills, saves the last ids and ends. ``counters`` may be read from any thread."""

    def __init__(
        self,
        ws_url: str,
        rest_url: str,
        symbols: Sequence[str],
        config: FeedConfig | None = None,
        state_path: Path | None = None,
        follow: Callable[[], Sequence[str]] | None = None,
        refresh_every: float = 300.0,
    ) -> None:
        if not symbols:
            raise ValueError("at least one symbol is required")
        self.ws_url = ws_url
        self.rest_url = rest_url
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
        self.config = config or FeedConfig()
        self.state = FeedState(state_path, rest_url)
        self.counters = FeedCounters()
        self._resume: dict[str, int] = {}
        self.follow = follow  # the symbols to follow now (blocking; run on a worker thread)
        self.refresh_every = refresh_every
        self._error: BaseException | None = None
        self._shards: list[Shard] = []  # the shards following symbols now
        self._every_shard: list[Shard] = []  # ...and those that ended (for the counters)
        self._tasks: list[asyncio.Task[None]] = []
        self._make_shard: Callable[[int, frozenset[str]], Shard] | None = None
        self._saved: dict[str, int] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, persist: bool = True, symbols: Sequence[str] | None = None
    ) -> BinanceFeed:
        """The feed of ``settings``; with ``symbols=all``, ``symbols`` is the market as read
        from exchangeInfo at start (:func:`cryptolab.feeds.live.universe.resolve_symbols`),
        re-read every ``symbols_refresh_seconds``."""
        config = FeedConfig(
            connect_timeout=settings.connect_timeout_seconds,
            rotate_after=settings.feed_rotate_seconds,
            silence_timeout=settings.feed_silence_seconds,
            max_gap=settings.backfill_max_trades,
            time_unit=settings.binance_time_unit,
        )
        state = (settings.data_dir / STATE_FILE).resolve() if persist else None
        follow = None
        if settings.all_symbols:
            if not symbols:
                raise ValueError("symbols=all: pass the symbols read from exchangeInfo")

            def follow() -> Sequence[str]:
                listings = fetch_listings(
                    settings.binance_rest_url, settings.connect_timeout_seconds
                )
                return trading_symbols(listings, settings.quote_asset)

        return cls(
            settings.binance_ws_url,
            settings.binance_rest_url,
            symbols or settings.symbols,
            config,
            state,
            follow,
            settings.symbols_refresh_seconds,
        )

    def resume_from(self, last_ids: dict[str, int]) -> None:
        """Continue each symbol after ``last_ids[symbol]`` (call before :meth:`frames`), or
        after the id this feed saved last time, whichever is later: the trades in between are
        fetched over REST, so the store holds one unbroken run of ids (history, then live)."""
        self._resume = {s: i for s, i in last_ids.items() if s in self.symbols}

    def _start_ids(self) -> dict[str, int]:
        """Where each followed symbol continues: the saved id, or the resume id when later."""
        saved = {s: i for s, i in self._saved.items() if s in self.symbols}
        start = dict(saved)
        for symbol, last in self._resume.items():
            if last > saved.get(symbol, -1):
                start[symbol] = last
                log.info(
                    "resuming symbol=%s after last stored trade id=%d (saved state: %s)",
                    symbol, last, saved.get(symbol, "none"),
                )  # fmt: skip
        return start

    def frames(self, stop: threading.Event) -> Iterator[str | bytes]:
        out: queue.Queue[object] = queue.Queue()
        closed = threading.Event()  # the consumer stopped iterating early
        thread = threading.Thread(
            target=self._thread, args=(out, stop, closed), name="binance-feed", daemon=True
        )
        thread.start()
        try:
            while (item := out.get()) is not _END:
                yield item  # type: ignore[misc]
        finally:
            closed.set()
            thread.join(timeout=self.config.drain_timeout + 15)
        if self._error is not None:
            raise FeedError(f"binance feed failed: {self._error!r}") from self._error

    def _thread(
        self, out: queue.Queue[object], stop: threading.Event, closed: threading.Event
    ) -> None:
        try:
            asyncio.run(self._main(out, stop, closed))
        except BaseException as exc:  # handed to the consumer by frames()
            self._error = exc
            log.error("binance feed failed error=%r", exc)
        finally:
            out.put(_END)

    async def _main(
        self, out: queue.Queue[object], stop: threading.Event, closed: threading.Event
    ) -> None:
        config, counters = self.config, self.counters

        def emit(frame: str | bytes, backfilled: bool) -> None:
            out.put(frame)

        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as session:
            budget = WeightBudget(config.rest_weight_limit, share=config.rest_weight_share)
            rest = RestClient(session, self.rest_url, counters, budget, config.time_unit)
            jobs: asyncio.Queue[BackfillJob] = asyncio.Queue()
            self._saved = self.state.load()
            sequencer = Sequencer(
                self._start_ids(),
                emit,
                jobs.put_nowait,
                counters,
                config.max_gap,
                config.listing_max,
            )
            backfiller = Backfiller(rest, sequencer, jobs, config.max_gap)
            workers = [
                loop.create_task(backfiller.worker()) for _ in range(config.backfill_workers)
            ]
            attempts = AttemptLimiter(config.attempts_limit, config.attempts_window)
            stopping = asyncio.Event()

            def make_shard(index: int, symbols: frozenset[str]) -> Shard:
                shard = Shard(
                    index, self.ws_url, sorted(symbols), session, sequencer, counters, config,
                    attempts,
                )  # fmt: skip
                self._tasks.append(loop.create_task(shard.run(stopping)))
                return shard

            self._make_shard = make_shard
            self._apply(self.symbols, sequencer, initial=True)
            try:
                await self._watch(stop, closed, sequencer, attempts)
            finally:
                stopping.set()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                if not closed.is_set():
                    await self._final_backfill(sequencer)
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                self.state.save(sequencer.last_ids())
                log.info("binance feed stopped %s", _fields(counters.as_dict()))

    def _apply(self, wanted: Sequence[str], sequencer: Sequencer, initial: bool = False) -> None:
        """Follow exactly ``wanted`` from now on: (un)subscribe the difference."""
        current = [shard.symbols for shard in self._shards]
        before = frozenset().union(*current)
        plan = plan_shards(current, wanted, self.config.max_streams)
        for shard, symbols in zip(self._shards, plan, strict=False):
            shard.set_symbols(symbols)
        assert self._make_shard is not None
        for symbols in plan[len(current) :]:
            shard = self._make_shard(len(self._every_shard), symbols)
            self._shards.append(shard)
            self._every_shard.append(shard)
        self._shards = [shard for shard in self._shards if shard.symbols]
        added, removed = set(wanted) - before, before - set(wanted)
        self.counters.symbols = len(set(wanted))
        if initial:
            return
        for symbol in sorted(added):
            sequencer.follow(symbol, self._saved.get(symbol))
        self.counters.listed += len(added)
        self.counters.delisted += len(removed)
        if added or removed:
            log.info(
                "symbols changed followed=%d listed=%s delisted=%s",
                len(set(wanted)), _few(added), _few(removed),
            )  # fmt: skip

    def _gauges(self, attempts: AttemptLimiter) -> None:
        connections = [c for shard in self._every_shard for c in shard.connections()]
        active = [
            s.active for s in self._every_shard if s.active is not None and not s.active.released
        ]
        counters = self.counters
        counters.streams = sum(len(c.subscribed) for c in active)
        counters.streams_per_connection_max = max(
            [counters.streams_per_connection_max, *(len(c.subscribed) for c in connections)]
        )
        counters.control_messages = sum(s.messages_sent() for s in self._every_shard)
        counters.control_per_s_max = max(
            [counters.control_per_s_max, *(s.max_per_second for s in self._every_shard)]
        )
        counters.attempts_in_window = attempts.recent()

    async def _watch(
        self,
        stop: threading.Event,
        closed: threading.Event,
        sequencer: Sequencer,
        attempts: AttemptLimiter,
    ) -> None:
        loop = asyncio.get_running_loop()
        last_save = loop.time()
        next_refresh = loop.time() + self.refresh_every
        refreshing: asyncio.Task[Sequence[str]] | None = None
        while not (stop.is_set() or closed.is_set()):
            await asyncio.sleep(self.config.tick)
            for task in self._tasks:
                if task.done() and task.exception() is not None:
                    raise FeedError(f"shard failed: {task.exception()!r}")
            self._forget_finished()
            sequencer.start_tail_checks(loop.time(), self.config.tail_check_after)
            if loop.time() - last_save >= self.config.save_every:
                self.state.save(sequencer.last_ids())
                last_save = loop.time()
            if self.follow is not None and refreshing is None and loop.time() >= next_refresh:
                refreshing = loop.create_task(asyncio.to_thread(self.follow))
            if refreshing is not None and refreshing.done():
                next_refresh = loop.time() + self.refresh_every
                self._refreshed(refreshing, sequencer)
                refreshing = None
            self._gauges(attempts)

    def _refreshed(self, task: asyncio.Task[Sequence[str]], sequencer: Sequencer) -> None:
        """Apply a re-read symbol list; a failed read keeps the current one until the next."""
        try:
            wanted = task.result()
        except Exception as exc:  # the exchange is unreachable for a while: keep going
            log.warning("re-reading the symbol list failed, keeping the current one error=%s", exc)
            return
        if not wanted:
            log.warning("the symbol list came back empty: keeping the current one")
            return
        self._apply(wanted, sequencer)

    def _forget_finished(self) -> None:
        """Drop the tasks of shards that ended (their symbols were all delisted)."""
        done = [t for t in self._tasks if t.done() and t.exception() is None]
        if done:
            self._tasks = [t for t in self._tasks if t not in done]

    async def _final_backfill(self, sequencer: Sequencer) -> None:
        """On stop: check every suspect symbol over REST and let running backfills finish."""
        jobs = sequencer.start_tail_checks(None, 0.0)
        if jobs:
            log.info("final tail check symbols=%s", ",".join(j.symbol for j in jobs))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.drain_timeout):
                while sequencer.busy():
                    await asyncio.sleep(0.05)
        if sequencer.busy() or sequencer.pending_count():
            log.warning(
                "feed stopped with backfills unfinished: %d buffered trades not handed on "
                "(the saved last ids make the next start backfill them)",
                sequencer.pending_count(),
            )


def _few(symbols: Collection[str], shown: int = 10) -> str:
    names = sorted(symbols)
    more = f",+{len(names) - shown}" if len(names) > shown else ""
    return ",".join(names[:shown]) + more


def _fields(values: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())
