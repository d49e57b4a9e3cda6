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
from importlib import resources
from pathlib import Path
from typing import Any

from cryptolab.errors import TapeError
from cryptolab.settings import Settings, load_settings
from cryptolab.store import Store, open_store
from cryptolab.store.load import LoadReport, load_tape

SAMPLE = "sample"
SAMPLE_MARKET = "sample_market.jsonl.gz"

_scratch: Path | None = None
_databases = itertools.count(1)


def sample_market() -> Path:
    """The notebooks' sample tape shipped with the package: BTCUSDT, ETHUSDT and BNBUSDT,
    2026-11-01 00:00-00:30 UTC, ~20,600 trades, with a few gaps, late deliveries, duplicates
    and bad lines (see scripts/make_sample_market.py)."""
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
        if self.loaded is not None:
            return self.loaded.describe()
        return f"store {self.settings.store_url} (database {self.store.database})"


def open_market_data(
    tape: str | Path | None = SAMPLE, data_dir: str | Path | None = None, **overrides: Any
) -> MarketData:
    """Open market data for analysis.

    ``tape``: ``"sample"`` (the bundled sample) or a tape file, loaded into a fresh database of
    this kernel's scratch store (no Kafka, no Spark; seconds). ``None`` or ``""``: the store
    the pipeline writes, i.e. ``data_dir`` (default: ``CRYPTOLAB_DATA_DIR`` or ``./data``) or
    ``CRYPTOLAB_CLICKHOUSE_URL``. ``overrides`` are further settings.
    """
    if tape:
        path = resolve_tape(tape)
        settings = load_settings(
            data_dir=scratch_dir(), clickhouse_database=f"lab_{next(_databases)}", **overrides
        )
        store = open_store(settings)
        return MarketData(store, settings, load_tape(store, path))
    settings = load_settings(data_dir=data_dir, **overrides)
    return MarketData(open_store(settings), settings, None)
