"""Market data for a notebook: a tape loaded into a scratch store, or the pipeline's own store.

chDB allows one data directory per process, so a kernel keeps one scratch directory (removed
when the kernel exits) and gives every loaded tape a database of its own in it.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from cryptolab.batch.load import LoadReport, load_tape
from cryptolab.errors import ConfigError, CryptolabError, TapeError
from cryptolab.redact import mask_url
from cryptolab.settings import Settings, load_settings
from cryptolab.store import Store, open_store
from cryptolab.times import parse_utc, to_utc

SAMPLE = "sample"
SAMPLE_MARKET = "sample_market.jsonl.gz"

_scratch: Path | None = None
_databases = itertools.count(1)


def sample_market() -> Path:
    """The analysis sample shipped with the package (notebooks, reports, ``tape="sample"``):
    BTCUSDT, ETHUSDT and BNBUSDT, 2026-11-01 00:00-00:30 UTC, ~20,600 trades, with a few
    gaps, late deliveries, duplicates and bad lines (see scripts/make_sample_market.py). The
    clean demo loop of ``cryptolab up`` is :func:`cryptolab.feeds.source.demo_tape`."""
    return Path(str(resources.files("cryptolab.data") / SAMPLE_MARKET))


def resolve_tape(tape: str | Path) -> Path:
    """``"sample"`` -> the bundled sample tape; anything else is a path that must exist."""
    if str(tape) == SAMPLE:
        return sample_market()
    path = Path(tape).expanduser()
    if not path.is_file():
        raise TapeError(f"tape not found: {path} (pass a .jsonl or .jsonl.gz file, or 'sample')")
    return path


def scratch_dir() -> Path:
    """This process's scratch directory (created on first use, deleted at exit)."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="cryptolab-lab-"))
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


@dataclass
class MarketData:
    """An open store and where its data came from."""

    store: Store
    settings: Settings
    loaded: LoadReport | None  # set when a tape was loaded

    def describe(self) -> str:
        """Where the data came from, in detail."""
        if self.loaded is not None:
            return self.loaded.describe()
        return f"store {_safe_url(self.settings.store_url)} (database {self.store.database})"

    def label(self) -> str:
        """Where the data came from, in a few words."""
        if self.loaded is not None:
            return f"tape {self.loaded.tape}, loaded in batch"
        return f"the pipeline's store, {_safe_url(self.settings.store_url)}"

    def require_trades(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, Any]:
        """The period's summary (:func:`cryptolab.store.market.summary`); fails with what to do
        when the period has no trades of ``symbol``."""
        from cryptolab.store import market

        stats = market.summary(self.store, symbol, start, end)
        if not stats:
            have = ", ".join(market.symbols_with_trades(self.store)) or "none"
            raise CryptolabError(
                f"no {symbol} trades between {start or 'the beginning'} and {end or 'now'} in "
                f"{self.describe()} (symbols with trades: {have}): pick another period or "
                "symbol, run the pipeline first (`cryptolab up`), or load a tape ('sample')"
            )
        return stats


def _safe_url(url: str) -> str:
    """The URL without its password."""
    return mask_url(url)


def parse_time(value: str | datetime | None) -> datetime | None:
    """An ISO 8601 time (``2026-11-01T00:00:00Z``) as an aware UTC datetime; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return to_utc(value)
    try:
        return parse_utc(str(value))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def period(
    start: str | datetime | None, end: str | datetime | None
) -> tuple[datetime | None, datetime | None]:
    """``(start, end)`` parsed with :func:`parse_time`; start must come before end."""
    first, last = parse_time(start), parse_time(end)
    if first is not None and last is not None and first >= last:
        raise ConfigError(f"start {first.isoformat()} must be before end {last.isoformat()}")
    return first, last


def open_market_data(
    tape: str | Path | None = SAMPLE, data_dir: str | Path | None = None, **overrides: Any
) -> MarketData:
    """Open market data for analysis.

    ``tape``: ``"sample"`` (the bundled sample) or a tape file, loaded into a fresh database of
    this kernel's scratch chDB store (no Kafka, no Spark; seconds), never into a configured
    ClickHouse server. ``None`` or ``""``: the store
    the pipeline writes, i.e. ``data_dir`` (default: ``CRYPTOLAB_DATA_DIR`` or ``./data``) or
    ``CRYPTOLAB_CLICKHOUSE_URL``. ``overrides`` are further settings.
    """
    if tape:
        path = resolve_tape(tape)
        scratch = scratch_dir()
        settings = load_settings(  # always the scratch chDB, whatever store the env names
            data_dir=scratch,
            clickhouse_url=f"chdb://{scratch / 'clickhouse'}",
            clickhouse_database=f"lab_{next(_databases)}",
            **overrides,
        )
        store = open_store(settings)
        return MarketData(store, settings, load_tape(store, path))
    settings = load_settings(data_dir=data_dir, **overrides)
    return MarketData(open_store(settings), settings, None)
