"""The notebook front door: one call per step, so notebooks only import cryptolab and call it.

    from cryptolab import lab
    lab.setup()                                   # Plotly renderer, pandas display, logging
    data = lab.open_market_data("sample")         # a tape (or the pipeline's store), loaded
    stack = lab.start_pipeline("replay", "sample", speed="max")   # the embedded pipeline

Analysis helpers live in :mod:`cryptolab.lab.indicators`, :mod:`cryptolab.lab.tables` and
:mod:`cryptolab.lab.figures`; the store's read functions in :mod:`cryptolab.store`.
"""

from cryptolab.lab.data import MarketData, open_market_data, parse_time, period, sample_market
from cryptolab.lab.history import History, open_history
from cryptolab.lab.pipeline import (
    feed_counters,
    pipeline_summary,
    run_pipeline,
    show_dashboard,
    start_pipeline,
    stop_pipeline,
    timings,
)
from cryptolab.lab.setup import setup

__all__ = [
    "History",
    "MarketData",
    "feed_counters",
    "open_history",
    "open_market_data",
    "parse_time",
    "period",
    "pipeline_summary",
    "run_pipeline",
    "sample_market",
    "setup",
    "show_dashboard",
    "start_pipeline",
    "stop_pipeline",
    "timings",
]
