"""Tables a person reads: the report's summary, largest moves, busiest minutes and data-quality
checks, formatted as text (exact prices, thousands separators, UTC times)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from cryptolab.lab import indicators
from cryptolab.store import Store, quality

NOT_AVAILABLE = "not available"


def price(value: Any) -> str:
    """Exact price text: thousands separators, 2 to 8 decimals (trailing zeros trimmed)."""
    exact = Decimal(str(value)) if not isinstance(value, Decimal) else value
    places = max(2, min(8, -exact.normalize().as_tuple().exponent))  # type: ignore[operator]
    return f"{exact:,.{places}f}"


def approx_price(value: float) -> str:
    """A computed (float) price such as a VWAP, with as many decimals as the price needs."""
    places = 2 if abs(value) >= 100 else 4 if abs(value) >= 1 else 8
    return f"{value:,.{places}f}"


def number(value: Any, places: int = 2) -> str:
    return f"{float(value):,.{places}f}"


def when(value: Any) -> str:
    """A UTC time as ``YYYY-MM-DD HH:MM:SS``."""
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")


def percent(value: float, places: int = 3) -> str:
    return f"{value:+.{places}f} %"


def keyed_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` as the row labels, its name shown in the header row (one header line)."""
    frame = frame.set_index(column)
    frame.index.name = None
    frame.columns.name = column
    return frame


def summary_table(stats: dict[str, Any], candles: pd.DataFrame, interval: str) -> pd.DataFrame:
    """The period at a glance (from :func:`cryptolab.store.market.summary` and the candles)."""
    if not stats:
        return pd.DataFrame({"value": ["no trades in this period"]}, index=["trades"])
    opened, closed = float(stats["open"]), float(stats["close"])
    volume = float(stats["volume"])
    rows = {
        "first trade (UTC)": when(stats["first_trade"]),
        "last trade (UTC)": when(stats["last_trade"]),
        "open": price(stats["open"]),
        "high": price(stats["high"]),
        "low": price(stats["low"]),
        "close": price(stats["close"]),
        "change": percent((closed / opened - 1) * 100),
        "range (high - low) / open": percent(
            (float(stats["high"]) - float(stats["low"])) / opened * 100
        ).lstrip("+"),
        "VWAP": approx_price(float(stats["vwap"])),
        "volume (base)": number(stats["volume"], 5),
        "quote volume": number(stats["quote_volume"], 2),
        "trades": f"{int(stats['trades']):,}",
        "taker buys, share of volume": f"{float(stats['buy_volume']) / volume * 100:.1f} %",
        "average trade (quote)": number(float(stats["quote_volume"]) / int(stats["trades"]), 2),
        f"{interval} candles with trades": f"{len(candles):,}",
    }
    return pd.DataFrame({"value": list(rows.values())}, index=list(rows))


def moves_table(candles: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """The largest open-to-close moves among the candles."""
    moves = indicators.largest_moves(candles, top)
    return pd.DataFrame(
        {
            "window (UTC)": [when(t) for t in moves["window_start"]],
            "open": [price(v) for v in moves["open"]],
            "close": [price(v) for v in moves["close"]],
            "change": [percent(v) for v in moves["change_pct"]],
            "range": [percent(v).lstrip("+") for v in moves["range_pct"]],
            "trades": [f"{int(v):,}" for v in moves["trades"]],
        }
    ).pipe(keyed_by, "window (UTC)")


def busiest_table(busiest: pd.DataFrame) -> pd.DataFrame:
    """:func:`cryptolab.store.market.busiest` for reading."""
    volume = busiest["volume"].astype(float)
    return pd.DataFrame(
        {
            "minute (UTC)": [when(t) for t in busiest["bucket_start"]],
            "trades": [f"{int(v):,}" for v in busiest["trades"]],
            "volume": [number(v, 5) for v in volume],
            "quote volume": [number(v, 2) for v in busiest["quote_volume"]],
            "taker buys": [
                f"{b / v * 100:.1f} %"
                for b, v in zip(busiest["buy_volume"].astype(float), volume, strict=True)
            ],
        }
    ).pipe(keyed_by, "minute (UTC)")


def quality_table(
    store: Store,
    symbol: str,
    start: datetime | None,
    end: datetime | None,
    watermark_seconds: float,
) -> pd.DataFrame:
    """Every data-quality counter the store has for the period, and the ones it does not."""
    gaps = quality.trade_id_gaps(store, symbol, start, end)
    late = quality.late_deliveries(store, symbol, watermark_seconds, start, end)
    dropped = quality.dropped_by_watermark(store, start, end)
    rejected = quality.quarantined(store, start, end)
    rows = [
        (
            "trade-id gaps",
            f"{len(gaps)} gap(s), {int(gaps['missing'].sum()) if len(gaps) else 0} trade(s)"
            " missing",
            f"holes in {symbol}'s consecutive trade ids among the stored trades",
        ),
        (
            f"late deliveries (> {watermark_seconds:g} s)",
            f"{late['late']} of {late['trades']:,} trades (max delay {late['max_delay_s']:.1f} s)",
            "arrived after the streaming watermark; candles corrected by reconcile",
        ),
        (
            "late trades dropped by the stream",
            NOT_AVAILABLE if dropped is None else f"{dropped}",
            "no streaming run recorded metrics in this store"
            if dropped is None
            else "rows_dropped_by_watermark in pipeline_metrics, all symbols",
        ),
        (
            "rejected records (quarantine)",
            f"{int(rejected['records'].sum()) if len(rejected) else 0}",
            "records no parser accepted, all symbols (see the table below)",
        ),
        ("dead-letter topic (DLQ)", NOT_AVAILABLE, "a Kafka topic; its counts are not stored"),
        ("gaps backfilled", NOT_AVAILABLE, "no backfill counters are stored"),
    ]
    return pd.DataFrame(rows, columns=["check", "value", "note"]).pipe(keyed_by, "check")


def gaps_table(
    store: Store, symbol: str, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """One row per trade-id gap: the ids and times around it."""
    gaps = quality.trade_id_gaps(store, symbol, start, end)
    return pd.DataFrame(
        {
            "after id": gaps["after_id"],
            "before id": gaps["before_id"],
            "missing": gaps["missing"],
            "from (UTC)": [when(t) for t in gaps["after_time"]],
            "to (UTC)": [when(t) for t in gaps["before_time"]],
        }
    ).pipe(keyed_by, "after id")


def rejected_table(store: Store, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """Rejected records by source and reason."""
    frame = quality.quarantined(store, start, end).rename(columns={"topic": "source"})
    return keyed_by(frame, "source")


def report_header(
    symbol: str, start: datetime | None, end: datetime | None, interval: str, source: str
) -> str:
    """The report's title block (Markdown)."""
    first = f"{start:%Y-%m-%d %H:%M} UTC" if start else "the first trade"
    last = f"{end:%Y-%m-%d %H:%M} UTC" if end else "the last trade"
    return (
        f"# {symbol} market report\n\n"
        f"**Period** {first} to {last} &nbsp;·&nbsp; **candles** {interval} &nbsp;·&nbsp; "
        f"**data** {source}"
    )


def report_footer() -> str:
    """When and by what the report was generated (Markdown)."""
    from importlib.metadata import version

    now = datetime.now(UTC)
    return f"*Generated at {now:%Y-%m-%d %H:%M:%S} UTC by cryptolab {version('cryptolab')}.*"
