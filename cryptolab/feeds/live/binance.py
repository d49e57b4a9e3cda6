"""Live Binance trades, gap-free: combined-stream WebSockets plus REST backfill.

``<ws_url>/stream?streams=btcusdt@trade/ethusdt@trade`` wraps each event as
``{"stream": "btcusdt@trade", "data": {...}}``. :class:`BinanceFeed` yields every trade of the
requested symbols exactly once, per symbol in trade-id order:

- symbols are sharded over connections of at most 1024 streams (:mod:`.shard`);
- pings are answered with pongs of the same payload, never more than 5 messages per second;
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
import json
import logging
import os
import queue
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import aiohttp
import websocket

from cryptolab.errors import FeedError
from cryptolab.feeds.live.backfill import Backfiller, RestClient, WeightBudget
from cryptolab.feeds.live.config import MAX_STREAMS_PER_CONNECTION, FeedConfig
from cryptolab.feeds.live.connection import AttemptLimiter, Backoff, stream_url
from cryptolab.feeds.live.counters import FeedCounters
from cryptolab.feeds.live.sequencer import BackfillJob, Sequencer
from cryptolab.feeds.live.shard import Shard
from cryptolab.settings import Settings

__all__ = [
    "MAX_STREAMS_PER_CONNECTION",
    "Backoff",
    "BinanceFeed",
    "FeedConfig",
    "FeedCounters",
    "FeedState",
    "probe",
    "stream_url",
]

log = logging.getLogger(__name__)

STATE_FILE = Path("feed") / "binance_last_trade_ids.json"


def probe(base_url: str, symbols: Sequence[str], timeout: float) -> str | None:
    """Try to open the stream once; None when it works, else the reason it does not."""
    try:
        conn = websocket.create_connection(
            stream_url(base_url, symbols[:MAX_STREAMS_PER_CONNECTION]), timeout=timeout
        )
    except (OSError, websocket.WebSocketException) as exc:
        return f"{type(exc).__name__}: {exc}"
    conn.close()
    return None


class FeedState:
    """The last trade id handed on per symbol, saved as JSON (atomically replaced) so that a
    restart detects and backfills what happened while the feed was down. Ids are kept per REST
    endpoint: a local replay server's ids never mix with Binance's."""

    def __init__(self, path: Path | None, endpoint: str) -> None:
        self.path = path
        self.endpoint = endpoint.rstrip("/")
        self._saved: dict[str, int] = {}

    def _read(self) -> dict[str, dict[str, int]]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FeedError(
                f"cannot read the feed state {self.path}: {exc}; delete it to start afresh "
                "(gaps from before this start will then not be backfilled)"
            ) from exc
        endpoints = data.get("endpoints", {}) if isinstance(data, dict) else {}
        return endpoints if isinstance(endpoints, dict) else {}

    def load(self, symbols: Collection[str] | None = None) -> dict[str, int]:
        """The saved ids (of ``symbols`` only, when given: others stay saved, untouched)."""
        ids = self._read().get(self.endpoint, {})
        self._saved = {s: i for s, i in ids.items() if isinstance(i, int)}
        return {s: i for s, i in self._saved.items() if symbols is None or s in symbols}

    def save(self, last_ids: dict[str, int]) -> None:
        if self.path is None or all(self._saved.get(s) == i for s, i in last_ids.items()):
            return
        endpoints = self._read()
        endpoints[self.endpoint] = {**endpoints.get(self.endpoint, {}), **last_ids}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, "endpoints": endpoints}, indent=1))
        os.replace(tmp, self.path)
        self._saved.update(last_ids)


_END = object()


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
        self._error: BaseException | None = None

    @classmethod
    def from_settings(cls, settings: Settings, persist: bool = True) -> BinanceFeed:
        config = FeedConfig(
            connect_timeout=settings.connect_timeout_seconds,
            rotate_after=settings.feed_rotate_seconds,
            silence_timeout=settings.feed_silence_seconds,
            max_gap=settings.backfill_max_trades,
            time_unit=settings.binance_time_unit,
        )
        state = (settings.data_dir / STATE_FILE).resolve() if persist else None
        return cls(
            settings.binance_ws_url, settings.binance_rest_url, settings.symbols, config, state
        )

    def resume_from(self, last_ids: dict[str, int]) -> None:
        """Continue each symbol after ``last_ids[symbol]`` (call before :meth:`frames`), or
        after the id this feed saved last time, whichever is later: the trades in between are
        fetched over REST, so the store holds one unbroken run of ids (history, then live)."""
        self._resume = {s: i for s, i in last_ids.items() if s in self.symbols}

    def _start_ids(self) -> dict[str, int]:
        saved = self.state.load(self.symbols)
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
            sequencer = Sequencer(
                self._start_ids(), emit, jobs.put_nowait, counters, config.max_gap
            )
            backfiller = Backfiller(rest, sequencer, jobs, config.max_gap)
            workers = [
                loop.create_task(backfiller.worker()) for _ in range(config.backfill_workers)
            ]
            attempts = AttemptLimiter(config.attempts_limit, config.attempts_window)
            stopping = asyncio.Event()
            shards = [
                Shard(i, self.ws_url, chunk, session, sequencer, counters, config, attempts)
                for i, chunk in enumerate(_chunks(self.symbols, config.max_streams))
            ]
            tasks = [loop.create_task(shard.run(stopping)) for shard in shards]
            try:
                await self._watch(stop, closed, sequencer, tasks)
            finally:
                stopping.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                if not closed.is_set():
                    await self._final_backfill(sequencer)
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                self.state.save(sequencer.last_ids())
                log.info("binance feed stopped %s", _fields(counters.as_dict()))

    async def _watch(
        self,
        stop: threading.Event,
        closed: threading.Event,
        sequencer: Sequencer,
        tasks: list[asyncio.Task[None]],
    ) -> None:
        loop = asyncio.get_running_loop()
        last_save = loop.time()
        while not (stop.is_set() or closed.is_set()):
            await asyncio.sleep(self.config.tick)
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise FeedError(f"shard failed: {task.exception()!r}")
            sequencer.start_tail_checks(loop.time(), self.config.tail_check_after)
            if loop.time() - last_save >= self.config.save_every:
                self.state.save(sequencer.last_ids())
                last_save = loop.time()

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


def _chunks(symbols: Sequence[str], size: int) -> list[Sequence[str]]:
    return [symbols[i : i + size] for i in range(0, len(symbols), size)]


def _fields(values: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())
