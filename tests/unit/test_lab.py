"""The notebook helpers that need no services: metrics, table formatting, figures, report
naming and the guards of `cryptolab report`."""

import gzip
import hashlib
import itertools
import math
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from cryptolab import lab
from cryptolab.errors import ConfigError, TapeError
from cryptolab.lab import figures, indicators, tables
from cryptolab.lab.data import _safe_url, period, resolve_tape, sample_market
from cryptolab.report import ReportError, execute, find_notebook, report_stem

ROOT = Path(__file__).resolve().parents[2]
T0 = pd.Timestamp("2026-11-01T00:00:00Z")


def candles_10s(closes: list[float]) -> pd.DataFrame:
    starts = [T0 + pd.Timedelta(seconds=10 * i) for i in range(len(closes))]
    return pd.DataFrame({"window_start": starts, "close": [Decimal(str(c)) for c in closes]})


def test_realized_volatility_is_the_root_of_summed_squared_log_returns() -> None:
    closes = [100.0, 101.0, 100.0, 102.0, 102.0, 99.0, 100.0, 100.5]  # 6 in minute 0, 2 in 1
    rv = indicators.realized_volatility(candles_10s(closes), "1m")
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    minute0 = math.sqrt(sum(r * r for r in returns[:5])) * 1e4  # returns ending in minute 0
    minute1 = math.sqrt(sum(r * r for r in returns[5:])) * 1e4
    assert list(rv["returns"]) == [5, 2]
    assert rv["realized_vol_bp"].tolist() == pytest.approx([minute0, minute1], rel=1e-12)
    assert list(rv["window_start"]) == [T0, T0 + pd.Timedelta(minutes=1)]


def test_imbalance_moves_and_session_vwap() -> None:
    candles = pd.DataFrame(
        {
            "window_start": [T0, T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(minutes=2)],
            "open": [Decimal("100"), Decimal("101"), Decimal("99")],
            "high": [Decimal("102"), Decimal("101.5"), Decimal("99.5")],
            "low": [Decimal("99"), Decimal("98"), Decimal("99")],
            "close": [Decimal("101"), Decimal("99"), Decimal("99.5")],
            "volume": [Decimal("4"), Decimal("2"), Decimal("1")],
            "quote_volume": [Decimal("404"), Decimal("200"), Decimal("99.5")],
            "buy_volume": [Decimal("3"), Decimal("0.5"), Decimal("1")],
            "trades": [10, 5, 1],
        }
    )
    flow = indicators.flow_imbalance(candles)
    assert flow["imbalance"].tolist() == pytest.approx([0.5, -0.5, 1.0])
    assert flow["return_pct"].tolist() == pytest.approx([1.0, 100 * (99 / 101 - 1), 100 * 0.5 / 99])
    moves = indicators.largest_moves(candles, top=2)
    assert list(moves["window_start"]) == [T0 + pd.Timedelta(minutes=1), T0]
    assert moves["range_pct"].tolist() == pytest.approx([100 * 3.5 / 101, 3.0])
    assert indicators.session_vwap(candles).tolist() == pytest.approx([101, 604 / 6, 703.5 / 7])


def test_tables_format_exact_prices_and_times() -> None:
    assert tables.price(Decimal("96989.84000000")) == "96,989.84"
    assert tables.price(Decimal("0.00012345")) == "0.00012345"
    assert tables.price(Decimal("650.10000000")) == "650.10"
    assert tables.approx_price(96829.98765) == "96,829.99"
    assert tables.approx_price(0.123456789) == "0.12345679"
    assert tables.when(pd.Timestamp("2026-11-01T00:11:54.5Z")) == "2026-11-01 00:11:54"


def test_figures_round_derived_floats_and_say_when_empty() -> None:
    assert figures._sig([123.456789123, 0.000123456789, 0.0]).tolist() == [
        123.457,
        0.000123457,
        0.0,
    ]
    empty = figures.price_with_vwap(pd.DataFrame(columns=["window_start"]), "BTCUSDT")
    assert "no candles for BTCUSDT" in empty.layout.annotations[0].text


def test_period_parses_iso_utc_and_rejects_reversed_ranges() -> None:
    assert period("2026-11-01T00:00:00Z", "2026-11-01T01:00") == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 1, 1, tzinfo=UTC),
    )
    assert period(None, "") == (None, None)
    with pytest.raises(ConfigError, match="must be before"):
        period("2026-11-01T01:00Z", "2026-11-01T00:00Z")
    with pytest.raises(ConfigError, match="not an ISO 8601 time"):
        period("yesterday", None)


def test_sample_tape_resolves_and_missing_tapes_say_so(tmp_path: Path) -> None:
    assert resolve_tape("sample") == sample_market()
    assert sample_market().stat().st_size > 100_000
    with pytest.raises(TapeError, match="tape not found"):
        resolve_tape(tmp_path / "nope.jsonl")


def test_store_urls_are_shown_without_passwords() -> None:
    assert _safe_url("http://me:s3cret@ch.example:8123/crypto") == (  # secret-scan: allow
        "http://me:***@ch.example:8123/crypto"
    )
    assert _safe_url("chdb:///data/clickhouse") == "chdb:///data/clickhouse"


def test_sample_tape_is_reproducible_from_its_script(tmp_path: Path) -> None:
    out = tmp_path / "sample.jsonl.gz"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sample_market.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert (
        hashlib.sha256(out.read_bytes()).hexdigest()
        == hashlib.sha256(sample_market().read_bytes()).hexdigest()
    ), "the committed sample differs from what scripts/make_sample_market.py writes"
    with gzip.open(out, "rt") as handle:
        assert sum(1 for _ in handle) == 20605


def test_reports_are_named_by_their_parameters() -> None:
    params = {"symbol": "BTCUSDT", "start": "2026-11-01T00:00:00Z", "end": None, "tape": "x"}
    stem = report_stem(Path("03_market_report.ipynb"), params, ["symbol", "start", "end"])
    assert stem == "03_market_report_BTCUSDT_20261101T000000Z"


def test_report_finds_notebooks_by_name_and_never_runs_one_in_place(tmp_path: Path) -> None:
    notebook = find_notebook("03_market_report")
    assert notebook == ROOT / "notebooks" / "03_market_report.ipynb"
    with pytest.raises(ReportError, match=r"no notebook 'nope'.*03_market_report"):
        find_notebook("nope")
    before = notebook.read_bytes()
    with pytest.raises(ReportError, match="in place"):
        execute(notebook, notebook, {})
    assert notebook.read_bytes() == before


def _scratch_runs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("cryptolab-run-*"))


def test_start_pipeline_rejects_bad_arguments_before_starting_anything(tmp_path: Path) -> None:
    before = _scratch_runs()
    with pytest.raises(ConfigError, match="source must be 'replay' or 'live'"):
        lab.start_pipeline("kafka")
    with pytest.raises(ConfigError, match="a replay needs a tape"):
        lab.start_pipeline("replay", tape=None)
    with pytest.raises(TapeError, match="tape not found"):
        lab.start_pipeline("replay", tape=tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="speed must be positive"):
        lab.start_pipeline("replay", "sample", speed=-1)
    with pytest.raises(ConfigError, match="speed must be a number or 'max'"):
        lab.start_pipeline("replay", "sample", speed="fast")
    assert _scratch_runs() == before, "no scratch directory left behind"
    endless = SimpleNamespace(source=SimpleNamespace(finite=False))
    with pytest.raises(ConfigError, match="live feed never drains"):
        lab.run_pipeline(endless, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("notebook", "parameters"),
    [
        ("01_live_pipeline", ["source", "tape", "symbols", "duration", "speed", "data_dir",
                              "dash_port"]),
        ("02_explore_trades", ["tape", "data_dir", "symbol", "start", "end", "interval",
                               "profile_bins"]),
        ("03_market_report", ["symbol", "start", "end", "interval", "tape", "data_dir", "top"]),
    ],
)  # fmt: skip
def test_papermill_sees_every_parameter_of_the_notebooks(
    notebook: str, parameters: list[str]
) -> None:
    import papermill

    inferred = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"))
    assert list(inferred) == parameters
    assert all(p["help"] for p in inferred.values()), "each parameter says what it is"
