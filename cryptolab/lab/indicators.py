"""Market metrics computed from candles (pandas DataFrames from
:func:`cryptolab.store.queries.candles`): realized volatility, taker-flow imbalance, the largest
moves, and the session VWAP. Pure functions; no I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptolab.store.queries import INTERVAL_SECONDS


def _floats(series: pd.Series) -> pd.Series:
    return series.astype(float)


def session_vwap(candles: pd.DataFrame) -> pd.Series:
    """Cumulative VWAP from the first candle on: Σ quote volume / Σ volume."""
    return _floats(candles["quote_volume"]).cumsum() / _floats(candles["volume"]).cumsum()


def realized_volatility(candles_10s: pd.DataFrame, interval: str = "1m") -> pd.DataFrame:
    """Realized volatility per ``interval`` from 10 s closes: sqrt(Σ r²) of the log returns
    r between consecutive 10 s closes whose later close falls in the bucket (the first return
    of the period is dropped). Columns: window_start, returns (how many), realized_vol_bp
    (basis points per ``interval``)."""
    seconds = INTERVAL_SECONDS[interval]
    frame = candles_10s[["window_start", "close"]].copy()
    frame["r"] = np.log(_floats(frame["close"])).diff()
    frame = frame.dropna(subset=["r"])
    frame["bucket"] = frame["window_start"].dt.floor(f"{seconds}s")
    grouped = frame.groupby("bucket", sort=True)["r"]
    result = pd.DataFrame(
        {
            "returns": grouped.count(),
            "realized_vol_bp": np.sqrt(grouped.apply(lambda r: float((r**2).sum()))) * 1e4,
        }
    )
    return result.rename_axis("window_start").reset_index()


def flow_imbalance(candles: pd.DataFrame) -> pd.DataFrame:
    """Taker buy/sell imbalance per candle, (buys - sells) / (buys + sells) in [-1, 1], next
    to the candle's return. Columns: window_start, buy_volume, sell_volume, imbalance,
    return_pct (close / open - 1, in %)."""
    buys = _floats(candles["buy_volume"])
    volume = _floats(candles["volume"])
    return pd.DataFrame(
        {
            "window_start": candles["window_start"],
            "buy_volume": buys,
            "sell_volume": volume - buys,
            "imbalance": (2 * buys - volume) / volume,
            "return_pct": (_floats(candles["close"]) / _floats(candles["open"]) - 1) * 100,
        }
    )


def largest_moves(candles: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """The ``top`` candles with the largest absolute change from open to close (ties: earlier
    first). Columns: window_start, open, close, change_pct, range_pct ((high - low) / open),
    trades, volume."""
    opens = _floats(candles["open"])
    frame = pd.DataFrame(
        {
            "window_start": candles["window_start"],
            "open": candles["open"],
            "close": candles["close"],
            "change_pct": (_floats(candles["close"]) / opens - 1) * 100,
            "range_pct": (_floats(candles["high"]) - _floats(candles["low"])) / opens * 100,
            "trades": candles["trades"],
            "volume": candles["volume"],
        }
    )
    order = frame["change_pct"].abs().sort_values(ascending=False, kind="stable").index
    return frame.loc[order[:top]].reset_index(drop=True)
