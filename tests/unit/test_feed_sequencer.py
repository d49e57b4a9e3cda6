"""The sequencer: every trade once, per symbol in id order; gaps become REST jobs."""

from __future__ import annotations

from typing import Any

import pytest

from cryptolab.feeds.live.counters import FeedCounters
from cryptolab.feeds.live.sequencer import BackfillJob, Sequencer
from cryptolab.frames import rest_trade_frame, trade_frame, trade_key


def live(symbol: str, trade_id: int) -> str:
    return trade_frame(symbol, trade_id, "1.00000000", "2.00000000", 1_000 + trade_id, False, True)


def rest(symbol: str, trade_id: int) -> tuple[int, str]:
    item = {
        "id": trade_id,
        "price": "1.00000000",
        "qty": "2.00000000",
        "time": 1_000 + trade_id,
        "isBuyerMaker": False,
        "isBestMatch": True,
    }
    return rest_trade_frame(symbol, item)


class Harness:
    def __init__(self, last_ids: dict[str, int] | None = None, max_gap: int = 1000) -> None:
        self.out: list[tuple[str, int, bool]] = []
        self.jobs: list[BackfillJob] = []
        self.counters = FeedCounters()
        self.seq = Sequencer(last_ids or {}, self._emit, self.jobs.append, self.counters, max_gap)

    def _emit(self, frame: str | bytes, backfilled: bool) -> None:
        key = trade_key(frame)
        assert key is not None
        self.out.append((key[0], key[1], backfilled))

    def feed(self, symbol: str, *ids: int) -> None:
        for trade_id in ids:
            frame = live(symbol, trade_id)
            self.seq.on_live(frame, trade_key(frame))

    def ids(self, symbol: str) -> list[int]:
        return [i for s, i, _ in self.out if s == symbol]


def test_consecutive_trades_pass_and_duplicates_are_dropped() -> None:
    h = Harness()
    h.feed("BTCUSDT", 10, 11, 11, 12, 10, 13)
    assert h.ids("BTCUSDT") == [10, 11, 12, 13]
    assert h.counters.duplicates_dropped == 2
    assert h.counters.trades == 4 and not h.jobs


def test_a_gap_holds_live_trades_until_the_backfill_fills_it() -> None:
    h = Harness()
    h.feed("BTCUSDT", 1, 2, 6, 7)
    h.feed("ETHUSDT", 50, 51)  # other symbols keep flowing
    assert h.jobs == [BackfillJob("BTCUSDT", 3, 5)]
    assert h.ids("BTCUSDT") == [1, 2] and h.ids("ETHUSDT") == [50, 51]
    h.feed("BTCUSDT", 7, 8)  # duplicate while waiting is dropped, new one waits
    job = h.jobs[0]
    h.seq.on_backfill(job, [rest("BTCUSDT", 3), rest("BTCUSDT", 4)])
    h.seq.on_backfill(job, [rest("BTCUSDT", 5), rest("BTCUSDT", 6)])  # 6 is beyond the job
    assert h.ids("BTCUSDT") == [1, 2, 3, 4, 5]
    h.seq.on_backfill_done(job)
    assert h.ids("BTCUSDT") == [1, 2, 3, 4, 5, 6, 7, 8]
    backfilled = [i for s, i, b in h.out if b]
    assert backfilled == [3, 4, 5]
    assert h.counters.gaps_found == 1 and h.counters.trades_backfilled == 3
    assert h.counters.duplicates_dropped == 1 and not h.seq.busy()


def test_a_gap_inside_the_held_trades_opens_the_next_job() -> None:
    h = Harness()
    h.feed("BTCUSDT", 1, 4, 5, 9)
    first = h.jobs[0]
    h.seq.on_backfill(first, [rest("BTCUSDT", 2), rest("BTCUSDT", 3)])
    h.seq.on_backfill_done(first)
    assert h.ids("BTCUSDT") == [1, 2, 3, 4, 5]
    assert h.jobs[1] == BackfillJob("BTCUSDT", 6, 8)
    h.seq.on_backfill(h.jobs[1], [rest("BTCUSDT", i) for i in (6, 7, 8)])
    h.seq.on_backfill_done(h.jobs[1])
    assert h.ids("BTCUSDT") == list(range(1, 10))


def test_what_rest_cannot_return_is_counted_lost_and_the_feed_goes_on() -> None:
    h = Harness()
    h.feed("BTCUSDT", 1, 6)
    job = h.jobs[0]
    h.seq.on_backfill(job, [rest("BTCUSDT", 2), rest("BTCUSDT", 4)])
    h.seq.on_backfill_done(job, error="HTTP 500 five times")
    assert h.ids("BTCUSDT") == [1, 2, 4, 6]
    assert h.counters.trades_lost == 2  # ids 3 and 5


def test_gaps_over_the_limit_are_reported_lost_not_fetched() -> None:
    h = Harness(max_gap=10)
    h.feed("BTCUSDT", 1, 100, 101)
    assert not h.jobs
    assert h.ids("BTCUSDT") == [1, 100, 101]
    assert (h.counters.gaps_found, h.counters.trades_lost) == (1, 98)


def test_restart_detects_the_gap_since_the_saved_id_and_drops_replayed_trades() -> None:
    h = Harness({"BTCUSDT": 100})
    h.feed("BTCUSDT", 104)
    assert h.jobs == [BackfillJob("BTCUSDT", 101, 103)]
    h2 = Harness({"BTCUSDT": 100})
    h2.feed("BTCUSDT", 101, 101, 102)
    assert h2.ids("BTCUSDT") == [101, 102] and not h2.jobs


def test_ids_that_start_over_after_a_restart_are_taken_as_a_new_sequence() -> None:
    h = Harness({"BTCUSDT": 5_000})
    h.feed("BTCUSDT", 10, 11, 11)
    assert h.ids("BTCUSDT") == [10, 11]
    assert h.counters.duplicates_dropped == 1


def test_tail_checks_run_for_lost_symbols_after_the_reconnect_settles() -> None:
    h = Harness()
    h.feed("BTCUSDT", 1)
    h.feed("ETHUSDT", 7)
    h.seq.connection_lost(["BTCUSDT", "ETHUSDT"])
    assert h.seq.start_tail_checks(now=100.0, after=5.0) == []  # still disconnected
    h.seq.connection_restored(["BTCUSDT", "ETHUSDT"], now=100.0)
    h.feed("ETHUSDT", 8)  # a live trade: no need to check ETHUSDT
    assert h.seq.start_tail_checks(now=103.0, after=5.0) == []
    jobs = h.seq.start_tail_checks(now=105.0, after=5.0)
    assert jobs == [BackfillJob("BTCUSDT", 2, None)]
    h.seq.on_backfill(jobs[0], [rest("BTCUSDT", 2), rest("BTCUSDT", 3)])
    h.seq.on_backfill_done(jobs[0])
    assert h.ids("BTCUSDT") == [1, 2, 3]
    assert h.seq.start_tail_checks(now=200.0, after=5.0) == []


def test_on_stop_every_suspect_symbol_is_checked_at_once() -> None:
    h = Harness({"BTCUSDT": 1, "ETHUSDT": 5})
    jobs = h.seq.start_tail_checks(now=None, after=0.0)
    assert {j.symbol for j in jobs} == {"BTCUSDT", "ETHUSDT"}
    assert h.seq.busy()


@pytest.mark.parametrize("frame", ["not json", '{"e":"kline"}', '{"stream":"x","data":[]}'])
def test_frames_that_are_not_trades_are_handed_on_for_the_dlq(frame: Any) -> None:
    h = Harness()
    seen: list[str | bytes] = []
    h.seq._emit = lambda f, b: seen.append(f)
    h.seq.on_live(frame, trade_key(frame))
    assert seen == [frame] and h.counters.other_frames == 1
