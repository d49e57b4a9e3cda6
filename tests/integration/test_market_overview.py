"""The market overview's store side (rollups, snapshot) on a real chDB store, against an
independent pandas computation from the raw trades (tests/reference.py: reference_overview).

The tape spans 26 hours so every definition is exercised: symbols trading all along, one listed
in the last half hour (partial changes), one quiet for the last day, and a late trade that a
reconcile writes into a window hours old (the rollups must notice and recompute it)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cryptolab.batch.load import load_frames
from cryptolab.feeds.tapes.synth import DEFAULT_START_MS, synth_frames
from cryptolab.store import Store, open_store
from cryptolab.store.endpoint import Endpoint
from cryptolab.store.overview import MarketOverview, MarketSnapshot, snapshot
from cryptolab.store.rollups import RollupKeeper, refresh_rollups
from cryptolab.store.schema import MARKET_1M, MARKET_10S, MARKET_STATE
from tests.reference import reference_overview, tape_trades

HOUR_MS = 3_600_000
SPAN_H = 26


def _frames() -> list[str]:
    """26 h of BTCUSDT/ETHUSDT (sparse), SOLUSDT in the last 30 min, QUIETUSDT in hour 0-1."""
    parts = [
        synth_frames(["BTCUSDT", "ETHUSDT"], SPAN_H * 3600, 0.05, seed=5),
        synth_frames(["SOLUSDT"], 1800, 0.5, seed=6, start_ms=DEFAULT_START_MS + 25 * HOUR_MS + 1),
        synth_frames(["QUIETUSDT"], 3600, 0.2, seed=7),
    ]
    frames = [f for part in parts for f in part]
    return sorted(frames, key=lambda f: json.loads(f)["data"]["E"])


def _write(path: Path, frames: list[str]) -> Path:
    path.write_text("\n".join(frames) + "\n")
    return path


@pytest.fixture(scope="module")
def loaded(chdb_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import uuid

    from cryptolab.settings import load_settings

    settings = load_settings(data_dir=chdb_root, clickhouse_database=f"t_{uuid.uuid4().hex[:10]}")
    store = open_store(settings)
    frames = _frames()
    load_frames(store, frames, "overview-test")
    yield store, frames, tmp_path_factory.mktemp("overview")


def _check(snap: MarketSnapshot, trades: pd.DataFrame) -> None:
    expected = reference_overview(trades)
    assert snap.complete
    assert [r.symbol for r in snap.rows] == sorted(expected)
    for row in snap.rows:
        want = expected[row.symbol]
        where = row.symbol
        assert row.last == float(want["last"]), where  # type: ignore[arg-type]
        for name in ("change_1h", "change_24h"):
            got, ref = getattr(row, name), want[name]
            assert (got is None) == (ref is None), (where, name, got, ref)
            if ref is not None:
                assert got == pytest.approx(ref, rel=1e-9, abs=1e-12), (where, name)
            assert getattr(row, f"{name}_partial") == want[f"{name}_partial"], (where, name)
        quote = float(want["quote_volume_24h"])  # type: ignore[arg-type]
        assert row.quote_volume_24h == pytest.approx(quote, rel=1e-12), where
        assert row.trades_24h == want["trades_24h"], where
        assert row.trades_per_s == pytest.approx(want["trades_per_s"]), where
        assert list(row.spark) == pytest.approx(want["spark"], rel=1e-12), where


def test_snapshot_equals_the_reference_from_raw_trades(loaded: Any, tmp_path: Path) -> None:
    store, frames, _ = loaded
    trades = tape_trades(_write(tmp_path / "t.jsonl", frames))
    snap = snapshot(store)
    _check(snap, trades)
    rows = {r.symbol: r for r in snap.rows}
    assert rows["SOLUSDT"].change_1h_partial and rows["SOLUSDT"].change_24h_partial
    assert rows["QUIETUSDT"].trades_24h == 0 and rows["QUIETUSDT"].change_1h == 0.0
    assert not rows["BTCUSDT"].change_24h_partial and rows["BTCUSDT"].trades_24h > 1000
    assert len(rows["BTCUSDT"].spark) == 60, "the price at the end of each of 60 minutes"


def test_a_late_write_into_an_old_window_is_rolled_up_again(loaded: Any, tmp_path: Path) -> None:
    """A trade that arrives late lands (via reconcile) in a window 3 h old: the next snapshot
    includes it, because the refresh finds the rewritten candle by its updated_at."""
    store, frames, _ = loaded
    snapshot(store)  # rollups up to date
    newest = max(json.loads(f)["data"]["T"] for f in frames)
    late_time = newest - 3 * HOUR_MS
    late = {
        "stream": "btcusdt@trade",
        "data": {"e": "trade", "E": newest + 5, "s": "BTCUSDT", "t": 1, "p": "123456.00000000",
                 "q": "2.00000000", "T": late_time, "m": False, "M": True},
    }  # fmt: skip
    load_frames(store, [json.dumps(late)], "late")
    report = refresh_rollups(store)
    assert report.rewritten_hours >= 1, report
    assert refresh_rollups(store).rewritten_hours == 0, "done once, not again"
    trades = tape_trades(_write(tmp_path / "t.jsonl", [*frames, json.dumps(late)]))
    snap = snapshot(store)
    _check(snap, trades)
    btc = next(r for r in snap.rows if r.symbol == "BTCUSDT")
    assert btc.quote_volume_24h > 246_912, "the late trade's 246,912 USDT counted"


def test_overview_object_serves_requests_while_it_recomputes(loaded: Any, tmp_path: Path) -> None:
    store, _, _ = loaded
    overview = MarketOverview(store)
    first = overview.snapshot(wait=True)
    assert first.complete and len(first.rows) == 4
    again = overview.snapshot()
    assert again.rows == first.rows, "nothing new: the same figures, no recomputation"
    assert overview.error is None


def test_migration_builds_the_overview_tables_of_an_old_store(make_settings: Any) -> None:
    """A store from before the overview (its market tables and bookmark removed) is upgraded in
    place when opened: candles kept, overview tables filled from them."""
    settings = make_settings()
    store = open_store(settings)
    load_frames(store, list(synth_frames(["BTCUSDT", "ETHUSDT"], 600, 2, seed=9)), "old")
    before = snapshot(store)
    for table in (f"{MARKET_10S}_mv", "market_latest_mv", MARKET_10S, "market_latest", MARKET_1M,
                  "market_1h", MARKET_STATE):  # fmt: skip
        store.command(f"DROP TABLE {store.table(table)}")
    candles = store.query_rows(f"SELECT count() FROM {store.table('candles_10s')} FINAL")[0][0]
    assert candles > 100
    reopened = open_store(settings)
    assert reopened.query_rows(f"SELECT count() FROM {store.table(MARKET_10S)} FINAL")[0][0] == (
        candles
    )
    assert snapshot(reopened).rows == before.rows
    open_store(settings)  # a second start finds the bookmark: no second copy
    assert reopened.query_rows(f"SELECT count() FROM {store.table(MARKET_10S)}")[0][0] == candles


def test_an_empty_store_has_an_empty_overview(make_settings: Any) -> None:
    store: Store = open_store(make_settings())
    snap = snapshot(store)
    assert snap.rows == () and snap.newest is None
    assert MarketOverview(store).snapshot().rows == ()


def _late_btc_trade(frames: list[str], hours_back: int, trade_id: int) -> str:
    newest = max(json.loads(f)["data"]["T"] for f in frames)
    return json.dumps({
        "stream": "btcusdt@trade",
        "data": {"e": "trade", "E": newest + 5, "s": "BTCUSDT", "t": trade_id,
                 "p": "100.00000000", "q": "1.00000000", "T": newest - hours_back * HOUR_MS,
                 "m": False, "M": True},
    })  # fmt: skip


def _bookmark(store: Store) -> list[tuple[Any, ...]]:
    return store.query_rows(f"SELECT * FROM {store.table(MARKET_STATE)} FINAL ORDER BY ALL")


def test_the_writer_keeps_the_rollups_and_a_shared_reader_only_reads(loaded: Any) -> None:
    """The process writing the store refreshes the rollups on its own (the streaming job's
    keeper); a dashboard reading through the read-only share must not try to (it would fail on
    every refresh), and still serves the overview from what the writer rolled up."""
    store, frames, _ = loaded
    snapshot(store)  # up to date
    load_frames(store, [_late_btc_trade(frames, 5, 2)], "late-keeper")
    keeper = RollupKeeper(store, every=0.2).start()
    try:
        deadline = time.monotonic() + 60
        while keeper.refreshes < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        keeper.stop()
    assert keeper.refreshes >= 1
    assert refresh_rollups(store).rewritten_hours == 0, "the keeper rolled the late write up"

    load_frames(store, [_late_btc_trade(frames, 6, 3)], "late-reader")  # a refresh would write
    before = _bookmark(store)
    endpoint = Endpoint("http://127.0.0.1:1/", os.getpid(), store.url)
    reader = Store(store.client, store.database, store.url, shared=endpoint)
    overview = MarketOverview(reader)
    snap = overview.snapshot(wait=True)
    assert overview.error is None, overview.error
    assert snap.complete and len(snap.rows) == 4
    assert snapshot(reader).rows == snap.rows
    assert _bookmark(store) == before, "a reader through the share wrote the rollups' bookmark"
    assert refresh_rollups(store).rewritten_hours >= 1, "the late write was left to the writer"
