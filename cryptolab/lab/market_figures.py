"""Figures of notebook 05 (the whole market), from :mod:`cryptolab.lab.market` results.

Values are rounded (6 significant places) so committed notebook outputs compare exactly.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go

from cryptolab.lab import figures
from cryptolab.lab.data import MarketData
from cryptolab.lab.figures import ACCENT, DOWN, UP, _layout, _sig
from cryptolab.store import queries


def breadth(over_time: pd.DataFrame, interval: str) -> go.Figure:
    """Advancers and decliners (against each symbol's first price of the period), per bucket."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=over_time["bucket"], y=over_time["advancers"], name="advancers",
                             line={"color": UP}, fill="tozeroy"))  # fmt: skip
    fig.add_trace(go.Scatter(x=over_time["bucket"], y=-over_time["decliners"], name="decliners",
                             line={"color": DOWN}, fill="tozeroy"))  # fmt: skip
    fig.update_yaxes(title_text="symbols (decliners below 0)")
    return _layout(fig, f"Market breadth per {interval}: advancers vs decliners since the start")


def concentration(conc: pd.DataFrame, top: int = 10) -> go.Figure:
    """Cumulative share of quote volume by symbol rank (largest first)."""
    fig = go.Figure()
    ranks = list(range(1, len(conc) + 1))
    fig.add_trace(go.Scatter(x=ranks, y=_sig(conc["cumulative_share"] * 100), mode="lines+markers",
                             name="cumulative share", line={"color": ACCENT},
                             text=conc["symbol"]))  # fmt: skip
    share = float(conc["share"].head(top).sum()) * 100
    fig.update_xaxes(title_text="symbols, busiest first", type="log")
    fig.update_yaxes(title_text="% of quote volume", range=[0, 101])
    return _layout(fig, f"Volume concentration: the top {top} carry {share:.1f} % of it")


def correlation(corr: pd.DataFrame, interval: str) -> go.Figure:
    """Heat map of return correlations, clustered order."""
    fig = go.Figure(
        go.Heatmap(z=_sig(corr.to_numpy().ravel()).reshape(corr.shape), x=list(corr.columns),
                   y=list(corr.index), zmin=-1, zmax=1, colorscale="RdBu", reversescale=True)
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    size = max(460, 14 * len(corr) + 160)
    return _layout(fig, f"Correlation of {interval} returns (clustered)", height=size)


def lead_lag(table: pd.DataFrame, lead: str, interval: str, show: int = 8) -> go.Figure:
    """Correlation with ``lead``'s returns by lag for the ``show`` most correlated symbols."""
    lags = [c for c in table.columns if c.startswith("lag ")]
    fig = go.Figure()
    for _, row in table.sort_values("best_corr", ascending=False).head(show).iterrows():
        x = [int(c.split()[1]) for c in lags]
        y = _sig(row[lags].astype(float))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=row["symbol"]))
    fig.update_xaxes(title_text=f"lag ({interval} buckets; > 0: the symbol moves after {lead})")
    fig.update_yaxes(title_text=f"correlation with {lead}")
    return _layout(fig, f"Lead-lag against {lead}")


def mover_charts(
    data: MarketData,
    movers: pd.DataFrame,
    start: datetime | None,
    end: datetime | None,
    interval: str,
) -> list[go.Figure]:
    """Candles of each mover over the period (the same chart as notebook 02's)."""
    charts = []
    for _, row in movers.iterrows():
        candles = queries.candles(data.store, row["symbol"], interval, start, end)
        fig = figures.candles_with_volume(candles, row["symbol"], interval)
        fig.update_layout(title_text=f"{row['symbol']}: {row['change_pct']:+.2f} % ({row['side']})")
        charts.append(fig)
    return charts
