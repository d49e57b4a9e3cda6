"""The batch loader and the market / data-quality queries on a real chDB store, against an
independent pandas computation over the sample tape (tests/reference.py)."""

import gzip
import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cryptolab.batch.load import load_tape
from cryptolab.cli.render import render_candles
from cryptolab.lab.data import sample_market
from cryptolab.settings import load_settings
from cryptolab.store import Store, market, open_store, quality, queries
from tests.reference import assert_candles_equal, parse_candles_csv, reference_candles, tape_trades

SYMBOLS = ["BNBUSDT", "BTCUSDT", "ETHUSDT"]
START = datetime(2026, 11, 1, 0, 5, tzinfo=UTC)
END = datetime(2026, 11, 1, 0, 20, tzinfo=UTC)
START_MS, END_MS = int(START.timestamp() * 1000), int(END.timestamp() * 1000)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return tape_trades(sample_market())


@pytest.fixture(scope="module")
def loaded(chdb_root: Path) -> Iterator[tuple[Store, Any]]:
    settings = load_settings(data_dir=chdb_root, clickhouse_database=f"t_{uuid.uuid4().hex[:10]}")
    store = open_store(settings)
    report = load_tape(store, sample_market())
    yield store, report


def in_period(trades: pd.DataFrame, symbol: str) -> pd.DataFrame:
    mine = trades[(trades.symbol == symbol) & (trades.trade_time >= START_MS * 1000)]
    return mine[mine.trade_time < END_MS * 1000].sort_values(["trade_time", "trade_id"])


def test_loading_a_tape_stores_exact_trades_candles_and_rejects(
    loaded: tuple[Store, Any], reference: pd.DataFrame
) -> None:
    store, report = loaded
    assert (report.frames, report.duplicates, sum(report.rejected.values())) == (20605, 5, 4)
    assert report.trades == len(reference) == 20596
    assert queries.trade_counts(store) == reference.groupby("symbol").size().to_dict()
    stored: dict[Any, Any] = {}
    for symbol in SYMBOLS:
        stored.update(parse_candles_csv(render_candles(queries.candles(store, symbol), "csv")))
    assert_candles_equal(stored, reference_candles(reference))
    assert report.reconcile is not None and len(report.reconcile.changed) == len(stored)


def test_loading_the_same_tape_again_changes_nothing(loaded: tuple[Store, Any]) -> None:
    store, _ = loaded
    before = (queries.trade_counts(store), queries.candle_trade_counts(store))
    again = load_tape(store, sample_market())
    assert again.reconcile is not None and again.reconcile.changed == []
    assert (queries.trade_counts(store), queries.candle_trade_counts(store)) == before
    assert int(quality.quarantined(store)["records"].sum()) == 4


def test_summary_is_exact(loaded: tuple[Store, Any], reference: pd.DataFrame) -> None:
    store, _ = loaded
    mine = in_period(reference, "ETHUSDT")
    stats = market.summary(store, "ETHUSDT", START, END)
    quote = sum((p * q for p, q in zip(mine.price, mine.qty, strict=True)), Decimal(0))
    assert stats["open"] == mine.price.iloc[0] and stats["close"] == mine.price.iloc[-1]
    assert (stats["high"], stats["low"]) == (mine.price.max(), mine.price.min())
    assert stats["volume"] == sum(mine.qty, Decimal(0))
    assert stats["quote_volume"] == quote
    assert stats["buy_volume"] == sum(mine.qty[~mine.m], Decimal(0))
    assert stats["trades"] == len(mine)
    nothing = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC))
    assert market.summary(store, "ETHUSDT", *nothing) == {}


def test_trades_come_in_trade_time_order(
    loaded: tuple[Store, Any], reference: pd.DataFrame
) -> None:
    store, _ = loaded
    got = market.trades(store, "BNBUSDT", START, END)
    want = in_period(reference, "BNBUSDT")
    assert list(got.trade_id) == list(want.trade_id)
    assert list(market.trades(store, "BNBUSDT", START, END, limit=3).trade_id) == list(
        want.trade_id[:3]
    )


def test_busiest_minutes(loaded: tuple[Store, Any], reference: pd.DataFrame) -> None:
    store, _ = loaded
    mine = in_period(reference, "BTCUSDT")
    counts = mine.groupby(mine.trade_time // 60_000_000 * 60_000).size()
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
    got = market.busiest(store, "BTCUSDT", START, END, seconds=60, top=4)
    starts = [int(t.timestamp() * 1000) for t in got.bucket_start]
    assert list(zip(starts, got.trades, strict=True)) == want


def test_volume_profile_and_sizes_account_for_every_trade(
    loaded: tuple[Store, Any], reference: pd.DataFrame
) -> None:
    store, _ = loaded
    mine = in_period(reference, "BTCUSDT")
    profile = market.volume_profile(store, "BTCUSDT", START, END, bins=25)
    assert profile.trades.sum() == len(mine) and len(profile) <= 25
    assert profile.volume.sum() == pytest.approx(float(sum(mine.qty, Decimal(0))), rel=1e-12)
    assert profile.price_low.iloc[0] == float(mine.price.min())
    assert profile.price_high.iloc[-1] == pytest.approx(float(mine.price.max()), rel=1e-12)
    notional = mine.price.astype(float) * mine.qty.astype(float)
    buckets = np.floor(np.log10(notional) * 4).value_counts().sort_index()
    sizes = market.size_distribution(store, "BTCUSDT", START, END, per_decade=4)
    assert list(sizes.trades) == list(buckets.values)
    assert np.log10(sizes.notional_low).round(6).tolist() == (buckets.index / 4).round(6).tolist()


def test_quality_counters_find_what_the_tape_holds(
    loaded: tuple[Store, Any], reference: pd.DataFrame
) -> None:
    store, _ = loaded
    for symbol in SYMBOLS:
        ids = sorted(reference[reference.symbol == symbol].trade_id)
        want = [(a, b, b - a - 1) for a, b in itertools.pairwise(ids) if b - a > 1]
        gaps = quality.trade_id_gaps(store, symbol)
        got = list(zip(gaps.after_id, gaps.before_id, gaps.missing, strict=True))
        assert got == want, symbol
    assert len(quality.trade_id_gaps(store, "BTCUSDT")) == 1  # the sample's 40-trade hole
    assert quality.trade_id_gaps(store, "BTCUSDT", END).empty  # it lies before END
    with gzip.open(sample_market(), "rt") as handle:
        delays: dict[tuple[str, int], int] = {}
        for line in handle:
            try:
                data = json.loads(line)["data"]
                delays[(data["s"], data["t"])] = data["E"] - data["T"]
            except (ValueError, KeyError, TypeError):
                continue
    late = sum(1 for (s, _), d in delays.items() if s == "ETHUSDT" and d > 5000)
    late_got = quality.late_deliveries(store, "ETHUSDT", 5.0)
    assert (late_got["late"], late_got["trades"]) == (
        late,
        int((reference.symbol == "ETHUSDT").sum()),
    )
    assert late > 0
    assert quality.dropped_by_watermark(store) is None, "no streaming run: not available"
    rejected = quality.quarantined(store)
    assert set(rejected.topic) == {"tape:sample_market.jsonl.gz"}
    assert any("must be positive" in r for r in rejected.reason)


def test_a_tape_is_never_loaded_into_the_configured_server_store(tmp_path: Path) -> None:
    """In the compose `jupyter` container CRYPTOLAB_CLICKHOUSE_URL names the real server: a
    notebook's sample must still go to its own scratch store (separate process: one chDB
    path per process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAB_")}
    env["CRYPTOLAB_CLICKHOUSE_URL"] = "http://nobody@127.0.0.1:9/crypto"
    code = (
        "from cryptolab import lab; d = lab.open_market_data('sample'); "
        "print(d.settings.store_url, d.loaded.trades)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    url, trades = done.stdout.split()
    assert url.startswith("chdb:///") and trades == "20596"
