"""The whole market in a notebook: breadth, where the volume goes, what moves together, what
leads, and the biggest movers. Notebook 05 (``notebooks/05_market.ipynb``) calls these.

Data come from the store (:func:`cryptolab.store.market.bars`, the 10 s candles merged into
bars of every chosen symbol in one query); everything else is pandas/numpy on those bars:

* a bar's ``close`` is the price of its last trade; a symbol without a trade in a bar keeps
  its previous close (prices are carried forward, returns of quiet bars are 0);
* returns are log returns of consecutive closes.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from cryptolab.errors import ConfigError
from cryptolab.feeds.tapes.factor import LEAD, factor_market_frames, factor_symbols
from cryptolab.lab.data import MarketData, open_market_data, scratch_dir
from cryptolab.store import market as store_market
from cryptolab.store.queries import INTERVAL_SECONDS

SYNTHETIC = "synthetic"


def synthetic_market(
    symbols: int = 40, hours: float = 3.0, rate: float = 12.0, seed: int = 17
) -> Path:
    """A seeded synthetic market tape (:mod:`cryptolab.feeds.tapes.factor`: long-tailed rates,
    a market factor that BTCUSDT leads, sectors), written once into this kernel's scratch
    directory. It starts 2026-11-01T00:00:00Z."""
    path = scratch_dir() / f"market-{symbols}-{hours:g}h-{rate:g}-{seed}.jsonl.gz"
    if not path.exists():
        frames = factor_market_frames(factor_symbols(symbols), int(hours * 3600), rate, seed)
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            for frame in frames:
                handle.write(frame + "\n")
    return path


def open_market(tape: str | Path | None = SYNTHETIC, **synthetic: float) -> MarketData:
    """``"synthetic"``: :func:`synthetic_market` (``synthetic`` are its arguments) loaded in
    batch; a tape path or ``"sample"``: that tape; None: the pipeline's store."""
    if tape == SYNTHETIC:
        tape = synthetic_market(**synthetic)  # type: ignore[arg-type]
    return open_market_data(tape)


def choose_symbols(data: MarketData, symbols: str | Sequence[str]) -> list[str]:
    """``"all"``: every symbol with trades in the store (the tape, or what the pipeline
    followed); a list: those, upper-cased, each of which must have trades."""
    have = store_market.symbols_with_trades(data.store)
    if isinstance(symbols, str) and symbols.lower() == "all":
        if not have:
            raise ConfigError(f"no trades in {data.describe()}: load a tape or run the pipeline")
        return have
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    chosen = [str(s).strip().upper() for s in names]
    missing = [s for s in chosen if s not in have]
    if missing:
        raise ConfigError(
            f"no trades of {', '.join(missing)} in {data.describe()}; symbols with trades: "
            f"{', '.join(have[:30]) or 'none'}{' ...' if len(have) > 30 else ''}"
        )
    return chosen


def interval_seconds(interval: str) -> int:
    if interval not in INTERVAL_SECONDS:
        raise ConfigError(
            f"unknown interval {interval!r}: use one of {', '.join(INTERVAL_SECONDS)}"
        )
    return INTERVAL_SECONDS[interval]


def bars(
    data: MarketData,
    symbols: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    interval: str = "1m",
) -> pd.DataFrame:
    """Bars of ``symbols`` (long format: symbol, bucket, open, close, quote_volume, trades)."""
    frame = store_market.bars(data.store, list(symbols), interval_seconds(interval), start, end)
    if frame.empty:
        raise ConfigError(f"no candles of these symbols between {start} and {end}")
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


def closes(long: pd.DataFrame) -> pd.DataFrame:
    """Closes as a table (rows: buckets, columns: symbols), carried over quiet buckets."""
    wide = long.pivot(index="bucket", columns="symbol", values="close").sort_index()
    return wide.ffill()


def log_returns(wide: pd.DataFrame) -> pd.DataFrame:
    """Log returns of consecutive closes (NaN before a symbol's first trade)."""
    logs = pd.DataFrame(np.log(wide.to_numpy(dtype=float)), index=wide.index, columns=wide.columns)
    return logs.diff().iloc[1:]


# -- breadth and volume -------------------------------------------------------------------------
@dataclass(frozen=True)
class Breadth:
    advancers: int
    decliners: int
    unchanged: int
    by_symbol: pd.DataFrame  # symbol, first_open, last_close, change_pct, quote_volume, trades
    over_time: pd.DataFrame  # bucket, advancers, decliners (change since the period's start)

    def describe(self) -> str:
        total = self.advancers + self.decliners + self.unchanged
        return (
            f"{total} symbols: {self.advancers} advancers, {self.decliners} decliners, "
            f"{self.unchanged} unchanged"
        )


def breadth(long: pd.DataFrame) -> Breadth:
    """Which symbols ended the period above (below) their first price, and how that count
    evolved bucket by bucket."""
    ordered = long.sort_values(["symbol", "bucket"])
    grouped = ordered.groupby("symbol", sort=True)
    by_symbol = pd.DataFrame(
        {
            "first_open": grouped["open"].first(),
            "last_close": grouped["close"].last(),
            "quote_volume": grouped["quote_volume"].sum(),
            "trades": grouped["trades"].sum(),
        }
    )
    by_symbol["change_pct"] = (by_symbol["last_close"] / by_symbol["first_open"] - 1.0) * 100.0
    by_symbol = by_symbol.reset_index()
    wide = closes(long)
    first = by_symbol.set_index("symbol")["first_open"].reindex(wide.columns)
    above = wide.gt(first, axis=1).sum(axis=1)
    below = wide.lt(first, axis=1).sum(axis=1)
    over_time = pd.DataFrame({"bucket": wide.index, "advancers": above.values,
                              "decliners": below.values})  # fmt: skip
    change = by_symbol["change_pct"]
    return Breadth(
        advancers=int((change > 0).sum()),
        decliners=int((change < 0).sum()),
        unchanged=int((change == 0).sum()),
        by_symbol=by_symbol,
        over_time=over_time,
    )


def concentration(long: pd.DataFrame) -> pd.DataFrame:
    """Quote volume by symbol, largest first: share and cumulative share of the total (the
    Herfindahl index of the shares is ``(share ** 2).sum()``)."""
    totals = long.groupby("symbol")["quote_volume"].sum()
    order = sorted(totals.index, key=lambda s: (-totals[s], s))
    volume = totals[order]
    share = volume / volume.sum()
    return pd.DataFrame(
        {
            "symbol": volume.index,
            "quote_volume": volume.values,
            "share": share.values,
            "cumulative_share": share.cumsum().values,
        }
    )


def movers(by_symbol: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """The ``top`` gainers and ``top`` losers of the period (ties by name)."""
    ranked = by_symbol.sort_values(["change_pct", "symbol"], ascending=[False, True])
    losers = by_symbol.sort_values(["change_pct", "symbol"], ascending=[True, True])
    gainers = ranked.head(top).assign(side="gainer")
    fallen = losers[~losers["symbol"].isin(gainers["symbol"])].head(top).assign(side="loser")
    return pd.concat([gainers, fallen], ignore_index=True)


# -- co-movement --------------------------------------------------------------------------------
def cluster_order(corr: pd.DataFrame) -> list[str]:
    """Symbols ordered so that those that move together sit together: average-linkage
    hierarchical clustering on the distance ``1 - correlation``, leaves in merge order."""
    names = list(corr.columns)
    distance = 1.0 - corr.to_numpy(dtype=float)
    clusters: list[list[int]] = [[i] for i in range(len(names))]
    while len(clusters) > 1:
        best: tuple[float, int, int] | None = None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                d = float(np.nanmean(distance[np.ix_(clusters[a], clusters[b])]))
                d = 2.0 if np.isnan(d) else d
                if best is None or d < best[0]:
                    best = (d, a, b)
        assert best is not None
        _, a, b = best
        clusters[a] = clusters[a] + clusters[b]
        del clusters[b]
    return [names[i] for i in clusters[0]] if clusters else []


def return_correlation(wide: pd.DataFrame) -> pd.DataFrame:
    """Correlation of the log returns of every pair of symbols, rows and columns in
    :func:`cluster_order`."""
    corr = log_returns(wide).corr()
    order = cluster_order(corr)
    return corr.loc[order, order]


def lead_lag(wide: pd.DataFrame, lead: str = LEAD, max_lag: int = 6) -> pd.DataFrame:
    """For every other symbol: the correlation of ``lead``'s return in a bucket with the
    symbol's return ``lag`` buckets later, lag -max_lag..max_lag; the lag where it peaks
    (positive: the symbol follows ``lead``). Columns: symbol, best_lag, best_corr, corr_at_0,
    then one column per lag."""
    if lead not in wide.columns:
        raise ConfigError(f"{lead} is not among the symbols: add it to see who follows it")
    returns = log_returns(wide)
    base = returns[lead]
    rows = []
    for symbol in (c for c in returns.columns if c != lead):
        by_lag = {lag: float(base.corr(returns[symbol].shift(-lag)))
                  for lag in range(-max_lag, max_lag + 1)}  # fmt: skip
        valid = {k: v for k, v in by_lag.items() if not np.isnan(v)}
        best = max(valid, key=lambda k: (valid[k], -abs(k))) if valid else 0
        lags = {f"lag {k}": v for k, v in by_lag.items()}
        rows.append({"symbol": symbol, "best_lag": best, "best_corr": valid.get(best, np.nan),
                     "corr_at_0": by_lag[0], **lags})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["best_lag", "symbol"]).reset_index(drop=True)
