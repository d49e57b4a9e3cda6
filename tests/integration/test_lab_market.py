"""cryptolab.lab.market (notebook 05's analysis) on a real chDB store loaded from a synthetic
market tape, against numpy/pandas computed here from the raw trades of the tape (parsed by
tests/reference.py, not by cryptolab)."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cryptolab.errors import ConfigError
from cryptolab.feeds.tapes.factor import factor_market_frames, factor_symbols
from cryptolab.lab import market
from cryptolab.lab.data import MarketData, period
from tests.reference import tape_trades

SYMBOLS = factor_symbols(12)
START, END = "2026-11-01T00:10:00Z", "2026-11-01T01:00:00Z"
START_US, END_US = 1_793_491_800_000_000, 1_793_494_800_000_000  # tape_trades: microseconds


def write_tape(path: Path, symbols: list[str], seconds: int, rate: float, seed: int) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for frame in factor_market_frames(symbols, seconds, rate, seed):
            handle.write(frame + "\n")
    return path


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, chdb_root: Path
) -> Iterator[tuple[MarketData, Any]]:
    """The tape loaded as ``lab.market.open_market(tape)`` does, into the test run's chDB
    (one data directory per process)."""
    import uuid

    from cryptolab.batch.load import load_tape
    from cryptolab.settings import load_settings
    from cryptolab.store import open_store

    tape = write_tape(tmp_path_factory.mktemp("tape") / "m.jsonl.gz", SYMBOLS, 3600, 8, seed=23)
    settings = load_settings(data_dir=chdb_root, clickhouse_database=f"t_{uuid.uuid4().hex[:10]}")
    store = open_store(settings)
    data = MarketData(store, settings, load_tape(store, tape))
    trades = tape_trades(tape)
    trades = trades[(trades.trade_time >= START_US) & (trades.trade_time < END_US)]
    yield data, trades.sort_values(["symbol", "trade_time", "trade_id"])


def reference_closes(trades: pd.DataFrame, bucket_ms: int) -> pd.DataFrame:
    """Last price per (bucket, symbol), carried forward, as floats."""
    bucket_us = bucket_ms * 1000
    frame = trades.assign(bucket=trades.trade_time // bucket_us * bucket_us)
    last = frame.groupby(["bucket", "symbol"])["price"].last().astype(float).unstack()
    return last.sort_index().ffill()


def reference_returns(trades: pd.DataFrame, bucket_ms: int) -> pd.DataFrame:
    closes = reference_closes(trades, bucket_ms).astype(float)
    logs = pd.DataFrame(np.log(closes.to_numpy()), index=closes.index, columns=closes.columns)
    return logs.diff().iloc[1:]


def test_bars_breadth_concentration_and_movers(loaded: Any) -> None:
    data, trades = loaded
    start, end = period(START, END)
    long = market.bars(data, market.choose_symbols(data, "all"), start, end, "1m")
    grouped = trades.groupby("symbol")
    first, last = grouped["price"].first(), grouped["price"].last()
    change = (last.astype(float) / first.astype(float) - 1.0) * 100.0
    breadth = market.breadth(long)
    assert breadth.advancers == int((change > 0).sum())
    assert breadth.decliners == int((change < 0).sum())
    got = breadth.by_symbol.set_index("symbol")["change_pct"]
    assert np.allclose(got[change.index].to_numpy(), change.to_numpy(), rtol=1e-12)
    quote = trades.assign(q=[float(p * q) for p, q in zip(trades.price, trades.qty, strict=True)])
    volume = quote.groupby("symbol")["q"].sum()
    share = (volume / volume.sum()).sort_values(ascending=False)
    conc = market.concentration(long)
    assert list(conc["symbol"]) == list(share.index)
    assert np.allclose(conc["share"], share.to_numpy(), rtol=1e-9)
    assert conc["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    top = market.movers(breadth.by_symbol, 2)
    ranked = change.sort_values()
    assert list(top["symbol"]) == [*ranked.index[::-1][:2], *ranked.index[:2]]
    assert breadth.over_time["advancers"].iloc[-1] == breadth.advancers


def test_correlation_matrix_equals_pandas_on_the_raw_trades(loaded: Any) -> None:
    data, trades = loaded
    start, end = period(START, END)
    long = market.bars(data, SYMBOLS, start, end, "1m")
    corr = market.return_correlation(market.closes(long))
    expected = reference_returns(trades, 60_000).corr()
    order = list(corr.columns)
    assert sorted(order) == sorted(SYMBOLS)
    assert np.allclose(corr.to_numpy(), expected.loc[order, order].to_numpy(), atol=1e-9)


def test_cluster_order_keeps_planted_groups_together() -> None:
    names = [f"S{i}" for i in range(9)]
    group = {n: i % 3 for i, n in enumerate(names)}  # interleaved on purpose
    matrix = [[1.0 if a == b else 0.8 if group[a] == group[b] else 0.1 for b in names]
              for a in names]  # fmt: skip
    order = market.cluster_order(pd.DataFrame(matrix, index=names, columns=names))
    groups = [group[n] for n in order]
    runs = sum(1 for a, b in itertools.pairwise(groups) if a != b)
    assert sorted(order) == sorted(names) and runs == 2, order


def test_lead_lag_finds_the_followers(loaded: Any) -> None:
    data, trades = loaded
    start, end = period(START, END)
    wide = market.closes(market.bars(data, SYMBOLS, start, end, "10s"))
    table = market.lead_lag(wide, "BTCUSDT", 6).set_index("symbol")
    returns = reference_returns(trades, 10_000)
    lead = returns["BTCUSDT"].to_numpy()
    for symbol in (s for s in SYMBOLS if s != "BTCUSDT"):
        series = returns[symbol].to_numpy()
        by_lag = {}
        for lag in range(-6, 7):  # corr(lead[t], symbol[t + lag]) on the overlap
            a, b = (
                (lead[: len(lead) - lag], series[lag:]) if lag >= 0 else (lead[-lag:], series[:lag])
            )
            ok = ~(np.isnan(a) | np.isnan(b))
            by_lag[lag] = float(np.corrcoef(a[ok], b[ok])[0, 1])
        assert table.loc[symbol, "lag 0"] == pytest.approx(by_lag[0], abs=1e-9)
        assert table.loc[symbol, "lag 3"] == pytest.approx(by_lag[3], abs=1e-9)
        assert table.loc[symbol, "best_lag"] == max(by_lag, key=lambda k: (by_lag[k], -abs(k)))
    assert (table["best_lag"] > 0).sum() >= 8, "most of the synthetic market follows BTCUSDT"


def test_symbol_choice_says_what_is_there(loaded: Any) -> None:
    data, _ = loaded
    assert market.choose_symbols(data, "all") == sorted(SYMBOLS)
    assert market.choose_symbols(data, ["btcusdt", "ETHUSDT"]) == ["BTCUSDT", "ETHUSDT"]
    with pytest.raises(ConfigError, match=r"no trades of NOPEUSDT .* symbols with trades: "):
        market.choose_symbols(data, ["NOPEUSDT"])
    with pytest.raises(ConfigError, match="unknown interval '7m'"):
        market.interval_seconds("7m")
