"""Per-symbol trade-id bookkeeping: drop duplicates, detect gaps, keep each symbol in id order.

Binance numbers each symbol's trades consecutively (``t``), and a symbol's trade stream delivers
them in id order. The sequencer keeps one invariant per symbol: *every id up to ``last`` has been
handed on (or declared lost)*. So for a trade with id ``t``:

- ``t <= last``: a duplicate (overlapping connections, a restart) -> dropped;
- ``t == last + 1``: the next trade -> handed on;
- ``t > last + 1``: a gap -> ids ``last+1 .. t-1`` are requested over REST, and this symbol's
  live trades wait in a buffer until the backfill is done, so the output stays in id order.

A symbol whose connection was lost is *suspect*: trades may have been missed with no later trade
to reveal the gap. A live trade clears that; otherwise a *tail check* (REST from ``last+1``, open
ended) runs a few seconds after the reconnect, and for every suspect symbol when the feed stops.

A symbol *listed* while the feed runs (:meth:`Sequencer.follow`) may have traded before its
subscription took effect. Binance numbers a new symbol's trades from 0, so when its first live
trade id is small (at most ``listing_max``), ids ``0 .. t-1`` are fetched over REST first; a
larger id means a symbol that traded long before (it came back from a break): it is followed
from that trade on.

Not thread-safe: the live client calls it from its event loop only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cryptolab.feeds.live.counters import FeedCounters

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackfillJob:
    """Fetch ``symbol``'s trades ``first_id .. last_id`` over REST; ``last_id=None`` means
    "whatever happened from ``first_id`` on" (a tail check)."""

    symbol: str
    first_id: int
    last_id: int | None
    listing: bool = False  # the first trades of a new listing: REST's first id is the start

    @property
    def size(self) -> int | None:
        return None if self.last_id is None else self.last_id - self.first_id + 1


@dataclass
class _Symbol:
    last: int | None = None
    job: BackfillJob | None = None
    pending: dict[int, str] = field(default_factory=dict)
    suspect: bool = False
    suspect_since: float | None = None  # None while the connection is still down
    restored: bool = False  # ``last`` comes from a previous run; no live trade seen yet
    listing: bool = False  # listed while the feed runs; no live trade seen yet


Emit = Callable[[str | bytes, bool], None]
"""Hands a frame on (bytes: a binary message that is not UTF-8), and whether it was backfilled."""


class Sequencer:
    """``emit(frame, backfilled)`` receives every trade once, per symbol in id order;
    ``request(job)`` is asked to run a BackfillJob and report through ``on_backfill*``."""

    def __init__(
        self,
        last_ids: Mapping[str, int],
        emit: Emit,
        request: Callable[[BackfillJob], None],
        counters: FeedCounters,
        max_gap: int,
        listing_max: int = 100_000,
    ) -> None:
        self._emit = emit
        self._request = request
        self.counters = counters
        self.max_gap = max_gap
        self.listing_max = min(listing_max, max_gap)
        self._symbols: dict[str, _Symbol] = {}
        for symbol, last in last_ids.items():
            # trades may have happened while we were not running
            self._symbols[symbol] = _Symbol(last=last, suspect=True, restored=True)

    # -- state ---------------------------------------------------------------------------------
    def last_ids(self) -> dict[str, int]:
        """Last id handed on per symbol (what a restart continues from)."""
        return {
            s: st.last for s, st in self._symbols.items() if st.last is not None and st.last >= 0
        }

    def follow(self, symbol: str, saved_last: int | None = None) -> None:
        """``symbol`` is subscribed while the feed runs (a listing, or one back from a break).
        Known symbols keep their state; ``saved_last`` is the id a previous run saved."""
        if symbol in self._symbols:
            return
        if saved_last is not None:
            self._symbols[symbol] = _Symbol(last=saved_last, suspect=True, restored=True)
        else:
            self._symbols[symbol] = _Symbol(listing=True)

    def busy(self) -> bool:
        return any(st.job is not None for st in self._symbols.values())

    def pending_count(self) -> int:
        return sum(len(st.pending) for st in self._symbols.values())

    def _state(self, symbol: str) -> _Symbol:
        state = self._symbols.get(symbol)
        if state is None:
            state = self._symbols[symbol] = _Symbol()
        return state

    # -- live trades ---------------------------------------------------------------------------
    def on_live(self, frame: str | bytes, key: tuple[str, int] | None) -> None:
        """A frame received on a WebSocket; ``key`` is its (symbol, trade id) if it is a trade."""
        if key is None or isinstance(frame, bytes):
            # not a trade: handed on as it is (the producer dead-letters bad frames)
            self.counters.other_frames += 1
            self._emit(frame, False)
            return
        symbol, trade_id = key
        state = self._state(symbol)
        state.suspect = False
        self._accept(symbol, state, trade_id, frame)

    def _accept(self, symbol: str, state: _Symbol, trade_id: int, frame: str) -> None:
        if state.listing:
            state.listing = False
            if 0 < trade_id <= self.listing_max:  # a new listing: fetch its first trades
                state.last = -1
                state.job = BackfillJob(symbol, 0, trade_id - 1, listing=True)
                state.pending[trade_id] = frame
                log.info("new listing symbol=%s backfilling ids 0..%d", symbol, trade_id - 1)
                self._request(state.job)
                return
        if state.restored:
            self._check_restored(symbol, state, trade_id)
        if state.last is None:  # first trade ever seen for this symbol: nothing to compare with
            self._hand_on(state, trade_id, frame, backfilled=False)
        elif trade_id <= state.last or trade_id in state.pending:
            self.counters.duplicates_dropped += 1
        elif state.job is not None:
            state.pending[trade_id] = frame
        elif trade_id == state.last + 1:
            self._hand_on(state, trade_id, frame, backfilled=False)
        elif self._open_gap(symbol, state, trade_id - 1):
            state.pending[trade_id] = frame
        else:  # gap given up (too large): continue from here
            self._hand_on(state, trade_id, frame, backfilled=False)

    def _check_restored(self, symbol: str, state: _Symbol, trade_id: int) -> None:
        """The first live trade after a restart happened after the previous run ended, so its id
        is above the saved one — unless the ids started over (a replay server replaying again)."""
        state.restored = False
        if state.last is not None and trade_id <= state.last and state.job is None:
            log.warning(
                "trade ids went back symbol=%s saved_last_id=%d first_live_id=%d: the source "
                "started its ids over (a replayed tape?); continuing from the new ids",
                symbol,
                state.last,
                trade_id,
            )
            state.last = None

    def _hand_on(self, state: _Symbol, trade_id: int, frame: str, backfilled: bool) -> None:
        state.last = trade_id
        self.counters.trades += 1
        if backfilled:
            self.counters.trades_backfilled += 1
        self._emit(frame, backfilled)

    def _open_gap(self, symbol: str, state: _Symbol, up_to: int) -> bool:
        assert state.last is not None
        job = BackfillJob(symbol, state.last + 1, up_to)
        self.counters.gaps_found += 1
        size = job.size or 0
        if size > self.max_gap:
            self.counters.trades_lost += size
            state.last = up_to
            log.error(
                "gap too large to backfill symbol=%s first_id=%d last_id=%d trades=%d limit=%d "
                "(raise CRYPTOLAB_BACKFILL_MAX_TRADES to recover it next time)",
                symbol,
                job.first_id,
                up_to,
                size,
                self.max_gap,
            )
            return False
        log.info(
            "gap symbol=%s first_id=%d last_id=%d trades=%d", symbol, job.first_id, up_to, size
        )
        state.job = job
        self._request(job)
        return True

    # -- backfill results ----------------------------------------------------------------------
    def on_backfill(self, job: BackfillJob, trades: Iterable[tuple[int, str]]) -> None:
        """A page of REST trades for ``job``, ascending ids."""
        state = self._state(job.symbol)
        if state.job is not job:
            return
        for trade_id, frame in trades:
            if job.last_id is not None and trade_id > job.last_id:
                break  # those come (came) live
            if state.last is not None and trade_id <= state.last:
                continue
            if job.listing and state.last == -1:
                state.last = trade_id - 1  # the listing's first trade, whatever its id
            if state.last is not None and trade_id > state.last + 1:
                self._lose(job.symbol, state.last + 1, trade_id - 1, "not returned by REST")
            self._hand_on(state, trade_id, frame, backfilled=True)

    def on_backfill_done(self, job: BackfillJob, error: str | None = None) -> None:
        """``job`` finished (``error`` says why it stopped early): release waiting live trades."""
        state = self._state(job.symbol)
        if state.job is not job:
            return
        state.job = None
        if job.last_id is not None and state.last is not None and state.last < job.last_id:
            self._lose(job.symbol, state.last + 1, job.last_id, error or "not returned by REST")
            state.last = job.last_id
        elif error is not None and job.last_id is None:
            log.warning("tail check failed symbol=%s error=%s", job.symbol, error)
        for trade_id in sorted(state.pending):
            frame = state.pending.pop(trade_id)
            self._accept(job.symbol, state, trade_id, frame)
            if state.job is not None:  # a new gap inside the buffered trades
                break

    def _lose(self, symbol: str, first: int, last: int, why: str) -> None:
        self.counters.trades_lost += last - first + 1
        log.error(
            "trades lost symbol=%s first_id=%d last_id=%d trades=%d reason=%s",
            symbol,
            first,
            last,
            last - first + 1,
            why,
        )

    # -- connections and tail checks -----------------------------------------------------------
    def connection_lost(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            state = self._state(symbol)
            if state.last is not None:
                state.suspect, state.suspect_since = True, None

    def connection_restored(self, symbols: Iterable[str], now: float) -> None:
        for symbol in symbols:
            state = self._symbols.get(symbol)
            if state is not None and state.suspect and state.suspect_since is None:
                state.suspect_since = now

    def start_tail_checks(self, now: float | None, after: float) -> list[BackfillJob]:
        """Start tail checks for suspect symbols reconnected ``after`` seconds ago (all suspect
        symbols when ``now`` is None: the feed is stopping)."""
        jobs = []
        for symbol, state in self._symbols.items():
            if not state.suspect or state.job is not None or state.last is None:
                continue
            if now is not None and (
                state.suspect_since is None or now - state.suspect_since < after
            ):
                continue
            state.suspect = False
            state.job = BackfillJob(symbol, state.last + 1, None)
            jobs.append(state.job)
            self._request(state.job)
        return jobs
