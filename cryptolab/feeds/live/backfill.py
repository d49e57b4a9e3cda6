"""Gap filling over REST: ``GET /api/v3/historicalTrades?symbol=&fromId=&limit=1000``.

Each call weighs 25 against Binance's request-weight limit (6,000 per minute per IP). The client
keeps its own account of the weight it spent in the last minute, believes the server's
``X-MBX-USED-WEIGHT-1M`` when that is higher, and on ``429`` (too many requests) or ``418``
(IP banned for ignoring 429s) waits the ``Retry-After`` the server asks for before any further
call. A real ``historicalTrades`` item is documented in :mod:`cryptolab.frames`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from cryptolab.errors import FeedError
from cryptolab.feeds.live.counters import FeedCounters
from cryptolab.feeds.live.sequencer import BackfillJob, Sequencer
from cryptolab.frames import rest_trade_frame

log = logging.getLogger(__name__)

HISTORICAL_TRADES = "/api/v3/historicalTrades"
HISTORICAL_TRADES_WEIGHT = 25
PAGE = 1000
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
TIME_UNIT_HEADER = "X-MBX-TIME-UNIT"
"""``MICROSECOND`` asks REST for µs ``time`` values (Binance's opt-in; milliseconds by default)."""


@dataclass
class WeightBudget:
    """At most ``share`` of ``limit`` request weight in any ``window`` seconds."""

    limit: int = 6000
    window: float = 60.0
    share: float = 0.8
    clock: Callable[[], float] = time.monotonic
    _spent: deque[tuple[float, int]] = field(default_factory=deque)
    _blocked_until: float = 0.0

    def delay(self, weight: int) -> float:
        """Seconds to wait before spending ``weight`` (0 when it can go now)."""
        now = self.clock()
        while self._spent and self._spent[0][0] <= now - self.window:
            self._spent.popleft()
        wait = max(0.0, self._blocked_until - now)
        allowed = self.limit * self.share
        used = sum(w for _, w in self._spent)
        if used + weight > allowed and self._spent:
            # wait until enough of the oldest spending has left the window
            excess = used + weight - allowed
            for at, spent in self._spent:
                excess -= spent
                if excess <= 0:
                    wait = max(wait, at + self.window - now)
                    break
        return wait

    def spend(self, weight: int) -> None:
        self._spent.append((self.clock(), weight))

    def observe_used(self, used: int, weight: int) -> None:
        """The server's count of the weight used this minute; pause if it says we are close."""
        if used + weight > self.limit * self.share:
            self.block(self.window)

    def block(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self.clock() + seconds)


class RestClient:
    """``historicalTrades`` with the weight budget, ``Retry-After`` and retries on errors."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        counters: FeedCounters,
        budget: WeightBudget,
        time_unit: str = "MILLISECOND",
        attempts: int = 5,
        timeout: float = 10.0,
    ) -> None:
        self.session = session
        self.headers = {TIME_UNIT_HEADER: time_unit} if time_unit != "MILLISECOND" else {}
        self.url = base_url.rstrip("/") + HISTORICAL_TRADES
        self.counters = counters
        self.budget = budget
        self.attempts = attempts
        self.timeout = timeout

    async def historical_trades(self, symbol: str, from_id: int, limit: int) -> list[Any]:
        params = {"symbol": symbol, "fromId": str(from_id), "limit": str(limit)}
        problem, failures = "no attempt made", 0
        while failures < self.attempts:
            while (wait := self.budget.delay(HISTORICAL_TRADES_WEIGHT)) > 0:
                log.info("rest weight budget: waiting %.1f s", wait)
                await asyncio.sleep(wait)
            self.budget.spend(HISTORICAL_TRADES_WEIGHT)
            self.counters.rest_requests += 1
            try:
                result = await self._get(params)
            except (aiohttp.ClientError, TimeoutError) as exc:
                result = f"{type(exc).__name__}: {exc}"
            if isinstance(result, list):
                return result
            if result is None:  # throttled, not a failure: the budget now waits for Retry-After
                continue
            problem, failures = result, failures + 1
            await asyncio.sleep(min(10.0, 0.5 * 2**failures))
        raise FeedError(f"GET {self.url} {params} failed {self.attempts} times: {problem}")

    async def _get(self, params: dict[str, str]) -> list[Any] | str | None:
        """The trades, a description of a retryable failure, or None when throttled."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self.session.get(
            self.url, params=params, timeout=timeout, headers=self.headers
        ) as response:
            used = response.headers.get(USED_WEIGHT_HEADER, "")
            if used.isdigit():
                self.budget.observe_used(int(used), HISTORICAL_TRADES_WEIGHT)
            if response.status in (418, 429):
                retry_after = _retry_after(response.headers.get("Retry-After"))
                self.counters.rest_throttled += 1
                self.budget.block(retry_after)
                log.warning(
                    "rest throttled status=%d retry_after=%.0fs", response.status, retry_after
                )
                return None
            body = await response.text()
            if response.status >= 500:
                return f"HTTP {response.status}: {body[:200]}"
            if response.status != 200:
                raise FeedError(f"GET {self.url} {params}: HTTP {response.status}: {body[:200]}")
            trades = await response.json(content_type=None)
            if not isinstance(trades, list):
                raise FeedError(f"GET {self.url}: expected a JSON list, got {body[:200]}")
            return trades


def _retry_after(value: str | None) -> float:
    try:
        return max(1.0, float(value)) if value is not None else 60.0
    except ValueError:
        return 60.0


class Backfiller:
    """Runs BackfillJobs from a queue and reports pages to the sequencer."""

    def __init__(
        self,
        rest: RestClient,
        sequencer: Sequencer,
        jobs: asyncio.Queue[BackfillJob],
        max_trades: int,
        empty_retries: int = 3,
        empty_wait: float = 0.5,
    ) -> None:
        self.rest = rest
        self.sequencer = sequencer
        self.max_trades = max_trades
        self.empty_retries = empty_retries
        self.empty_wait = empty_wait
        self.jobs = jobs

    async def worker(self) -> None:
        while True:
            job = await self.jobs.get()
            error = None
            try:
                await self.run(job)
            except FeedError as exc:
                error = str(exc)
            self.sequencer.on_backfill_done(job, error)

    async def run(self, job: BackfillJob) -> None:
        """Fetch the job's trades page by page (ascending ids) and hand them over."""
        next_id, fetched, empties = job.first_id, 0, 0
        while fetched < self.max_trades:
            want = PAGE if job.last_id is None else min(PAGE, job.last_id - next_id + 1)
            if want <= 0:
                return
            items = await self.rest.historical_trades(job.symbol, next_id, want)
            page = self._frames(job.symbol, items, next_id)
            if not page:
                if job.last_id is None or empties >= self.empty_retries:
                    return
                empties += 1  # just-made trades can take a moment to reach REST
                await asyncio.sleep(self.empty_wait)
                continue
            self.sequencer.on_backfill(job, page)
            fetched += len(page)
            next_id = page[-1][0] + 1
            if job.size is not None and job.size > PAGE:
                log.info("backfill symbol=%s fetched=%d of %d", job.symbol, fetched, job.size)
            if job.last_id is None and len(items) < want:
                return

    @staticmethod
    def _frames(symbol: str, items: list[Any], from_id: int) -> list[tuple[int, str]]:
        page = []
        for item in items:
            try:
                trade_id, frame = rest_trade_frame(symbol, item)
            except (KeyError, TypeError) as exc:
                raise FeedError(
                    f"unexpected historicalTrades item {str(item)[:200]}: {exc}"
                ) from exc
            if trade_id >= from_id:
                page.append((trade_id, frame))
        page.sort(key=lambda pair: pair[0])
        return page
