"""Published history in a notebook (notebooks/04_history.ipynb): load it (cached), check its
candles against Binance's klines, and show how it joins the live data.

    from cryptolab import lab
    history = lab.open_history("BTCUSDT", "2025-01-01", "2025-01-31")   # data.binance.vision
    history = lab.open_history("BTCUSDT", start, end, base_url="sample")  # offline stand-in

``base_url="sample"`` builds a local stand-in archive from the bundled sample tape (its klines
computed by cryptolab's local Binance-protocol server, so *not* an independent check) and loads
it into this kernel's scratch store; any other base URL (``None``: CRYPTOLAB_BINANCE_DATA_URL)
loads into the pipeline's store under ``data_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from cryptolab.batch.download import Archive
from cryptolab.batch.history import HistoryReport, LogProgress, load_history
from cryptolab.batch.klines import FIELDS, KlineReport, verify_klines
from cryptolab.feeds.server.vision import ArchiveServer, write_archive
from cryptolab.feeds.tapes.tape import read_frames
from cryptolab.lab.data import SAMPLE, next_scratch_settings, sample_market, scratch_dir
from cryptolab.settings import Settings, load_settings
from cryptolab.store import Store, open_store, quality
from cryptolab.store.schema import HISTORY_FILES, TRADES
from cryptolab.times import EPOCH, to_utc

_sample: ArchiveServer | None = None


@dataclass
class History:
    """The store the history went into, what the load did, and where it came from."""

    store: Store
    settings: Settings
    archive: Archive
    report: HistoryReport

    @property
    def stand_in(self) -> bool:
        return _sample is not None and self.archive.base_url == _sample.url

    def source(self) -> str:
        if self.stand_in:
            return "a local stand-in archive made from the bundled sample tape (not Binance's)"
        return self.archive.base_url


def sample_archive() -> str:
    """Base URL of the local stand-in archive (made and served once per kernel)."""
    global _sample
    if _sample is None:
        root = scratch_dir() / "archive"
        write_archive(read_frames(sample_market()), root)
        _sample = ArchiveServer(root).start()
    return _sample.url


def _day(value: str | date | datetime) -> date:
    if isinstance(value, datetime):
        return to_utc(value).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def open_history(
    symbol: str,
    start: str | date | datetime,
    end: str | date | datetime,
    base_url: str | None = SAMPLE,
    data_dir: str | Path | None = None,
) -> History:
    """Load ``symbol``'s published trades of the days ``start .. end`` (inclusive; a time
    counts as its day), downloading only what the cache does not hold."""
    if base_url == SAMPLE:
        settings = next_scratch_settings()
        url, cache = sample_archive(), scratch_dir() / "cache"
    else:
        settings = load_settings(data_dir=data_dir)
        url, cache = base_url or settings.binance_data_url, settings.cache_dir / "binance"
    store = open_store(settings)
    archive = Archive(url, cache)
    report = load_history(store, archive, [symbol], _day(start), _day(end), progress=LogProgress())
    return History(store, settings, archive, report)


def load_table(history: History) -> pd.DataFrame:
    """What the load did, one row per file: loaded, already in the store, missing, refused."""
    rows: list[tuple[str, str, int | None, int | None, int | None]] = [
        (f.name, "loaded", f.trades, f.first_trade_id, f.last_trade_id)
        for f in history.report.loaded
    ]
    rows += [(name, "already in the store", None, None, None) for name in history.report.skipped]
    rows += [(name, "not published", None, None, None) for _, name in history.report.missing]
    rows += [(name, f"refused: {why}", None, None, None) for name, why in history.report.refused]
    columns = ["file", "status", "trades", "first trade id", "last trade id"]
    return pd.DataFrame(rows, columns=columns).set_index("file")


def verify(
    history: History, symbol: str, interval: str, start: datetime, end: datetime
) -> KlineReport:
    """Binance's ``interval`` klines of the period (from the same archive) against our candles."""
    return verify_klines(history.store, symbol, interval, start, end, archive=history.archive)


def verification_table(report: KlineReport) -> pd.DataFrame:
    """One row per compared field: klines compared, how many differ, the largest difference."""
    frame = pd.DataFrame(report.differences, columns=["open_time", *FIELDS])
    rows = []
    for name in FIELDS:
        values = frame[name]
        known = values.dropna()
        rows.append({
            "field": name,
            "klines compared": len(values),
            "equal": int((known == 0).sum()),
            "differ": int((known != 0).sum()) + int(values.isna().sum()),
            "largest |binance - ours|": f"{max(map(abs, known), default=Decimal(0)).normalize():f}",
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("field")


def differences_figure(report: KlineReport, symbol: str) -> go.Figure:
    """Binance's value minus ours per kline, for each field: flat at zero when exact."""
    frame = pd.DataFrame(report.differences, columns=["open_time", *FIELDS])
    when = pd.to_datetime(frame["open_time"], unit="ms", utc=True)
    fig = go.Figure()
    for name in FIELDS:
        values = [float(v) if v is not None else None for v in frame[name]]
        fig.add_trace(go.Scatter(x=when, y=values, mode="lines+markers", name=name))
    fig.update_layout(
        title=f"{symbol} {report.interval} klines: Binance minus cryptolab "
        f"({report.equal}/{report.compared} equal)",
        yaxis_title="difference",
        height=360,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )
    return fig


def join_table(store: Store, symbol: str) -> pd.DataFrame:
    """How the stored ids run: each loaded history file's id range, the trades after the
    history (the live feed's, continued from the last history id), and any hole in the ids."""
    files = store.query_rows(
        f"SELECT file, first_trade_id, last_trade_id, trades FROM {store.table(HISTORY_FILES)} "  # noqa: S608
        "FINAL WHERE symbol = {symbol:String} AND trades > 0 ORDER BY first_trade_id",
        {"symbol": symbol},
    )
    rows: list[dict[str, Any]] = [
        {"part": f"history {name}", "first id": first, "last id": last, "trades": count}
        for name, first, last, count in files
    ]
    last_history = max((int(r["last id"]) for r in rows), default=None)
    if last_history is not None:
        after = store.query_rows(
            f"SELECT min(trade_id), max(trade_id), count() FROM {store.table(TRADES)} FINAL "  # noqa: S608
            "WHERE symbol = {symbol:String} AND trade_id > {last:UInt64}",
            {"symbol": symbol, "last": last_history},
        )[0]
        if after[2]:
            rows.append({"part": "after the history (live)", "first id": after[0],
                         "last id": after[1], "trades": after[2]})  # fmt: skip
    gaps = quality.trade_id_gaps(store, symbol, EPOCH, None)
    for after_id, before_id, missing in gaps[["after_id", "before_id", "missing"]].itertuples(
        index=False, name=None
    ):
        rows.append({"part": "hole", "first id": after_id + 1, "last id": before_id - 1,
                     "trades": -missing})  # fmt: skip
    return pd.DataFrame(rows, columns=["part", "first id", "last id", "trades"])
