"""``cryptolab history load`` and ``cryptolab verify klines`` against a local data.binance.vision
(tests/vision_archive.py), run as a user runs them (subprocesses, real chDB store)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import environment, stored_candles
from tests.reference import assert_candles_equal, reference_candles
from tests.vision_archive import Archive, build_archive, serving, tamper_kline, utc_days

SYMBOLS = ("BTCUSDT", "ETHUSDT")
DAYS = {d: 25 for d in utc_days(date(2024, 10, 1), date(2024, 11, 30))} | {
    d: 1500 for d in utc_days(date(2024, 12, 28), date(2025, 1, 3))
}
VERIFIED = tuple(utc_days(date(2024, 12, 30), date(2025, 1, 2)))
MISSING, WRONG, TRUNCATED = date(2025, 1, 3), date(2024, 12, 29), date(2024, 12, 28)
LOADED = [d for d in DAYS if d not in (MISSING, WRONG, TRUNCATED)]

DUMP = """
import json
from cryptolab.settings import load_settings
from cryptolab.store import open_store
store = open_store(load_settings())
rows = store.query_rows(
    "SELECT symbol, trade_id, toString(price), toString(qty), toUnixTimestamp64Micro(trade_time), "
    f"is_buyer_maker FROM {store.table('trades')} FINAL ORDER BY symbol, trade_id")
files = store.query_rows(f"SELECT file, trades FROM {store.table('history_files')} FINAL")
print(json.dumps({"trades": rows, "files": dict(files)}))
"""


def run(
    args: list[str], env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cryptolab", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def dump(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", DUMP], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return build_archive(
        tmp_path_factory.mktemp("vision"),
        DAYS,
        SYMBOLS,
        monthly=("2024-11",),
        klines_days=VERIFIED,
        missing=(MISSING,),
        wrong_checksum=(WRONG,),
        truncated=(TRUNCATED,),
    )


@pytest.fixture(scope="module")
def loaded(archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One `history load` of 2024-10-01 .. 2025-01-03 for both symbols."""
    data = tmp_path_factory.mktemp("data")
    env = environment(data, CRYPTOLAB_CACHE_DIR=str(data / "cache"))
    with serving(archive.root) as server:
        args = ["history", "load", "--symbols", ",".join(SYMBOLS), "--start", "2024-10-01",
                "--end", "2025-01-03", "--base-url", server.url]  # fmt: skip
        first = run(args, env)
        again = run(args, env)
        yield {"env": env, "server": server, "first": first, "again": again, "args": args}


def test_history_load_loads_every_verified_file_and_reports_the_rest(
    archive: Archive, loaded: Any
) -> None:
    first = loaded["first"]
    assert first.returncode == 1, first.stderr[-3000:]  # a day missing, two refused
    out = first.stdout
    for symbol in SYMBOLS:
        assert f"missing: {symbol}-trades-2025-01-03.zip (not published)" in out
        assert f"refused: {symbol}-trades-2024-12-29.zip: checksum mismatch twice: published" in out
        assert (
            f"refused: {symbol}-trades-2024-12-28.zip: {symbol}-trades-2024-12-28.zip is not "
            "a readable zip" in out
        )
    # the whole month of November came as one monthly file; October's days one by one
    requests = loaded["server"].requests
    assert any(r.endswith("BTCUSDT-trades-2024-11.zip") for r in requests)
    assert not any("BTCUSDT-trades-2024-11-1" in r for r in requests)
    assert any(r.endswith("BTCUSDT-trades-2024-10-05.zip") for r in requests)

    stored = dump(loaded["env"])
    want = archive.trades[archive.trades.day.isin(LOADED)].sort_values(["symbol", "trade_id"])
    expected = [
        [s, int(t), f"{p:.8f}", f"{q:.8f}", int(us), bool(m)]
        for s, t, p, q, us, m in want[
            ["symbol", "trade_id", "price", "qty", "trade_time", "m"]
        ].itertuples(index=False)
    ]
    got = [
        [s, t, f"{Decimal(p):.8f}", f"{Decimal(q):.8f}", us, m]
        for s, t, p, q, us, m in stored["trades"]
    ]
    assert got == expected  # exactly these trades, µs of 2025 files kept, ms of 2024 exact
    assert any(row[4] % 1000 for row in got) and all(
        row[4] % 1000 == 0 for row, day in zip(got, want.day, strict=True) if day.year == 2024
    )
    assert not any(name.startswith(("BTCUSDT-trades-2024-12-28", "BTCUSDT-trades-2024-12-29"))
                   for name in stored["files"])  # fmt: skip


def test_candles_equal_the_reference_with_ties_ordered_by_id(archive: Archive, loaded: Any) -> None:
    trades = archive.trades[archive.trades.day.isin(LOADED)]
    ties = trades[trades.duplicated(["symbol", "trade_time"], keep=False)]
    assert (
        len(ties[ties.day >= date(2025, 1, 1)]) > 100
        and len(ties[ties.day < date(2025, 1, 1)]) > 100
    )
    assert_candles_equal(stored_candles(loaded["env"], list(SYMBOLS)), reference_candles(trades))


def test_loading_again_skips_what_is_in_the_store(loaded: Any) -> None:
    again = loaded["again"]
    assert again.returncode == 1
    summary = again.stdout.splitlines()[0]
    assert "0 files loaded (0 trades" in summary, summary
    assert dump(loaded["env"])["trades"]  # still there, not doubled (checked exactly above)


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "1d"])
def test_verify_klines_finds_every_kline_equal(loaded: Any, interval: str) -> None:
    done = run(["verify", "klines", "--symbol", "BTCUSDT", "--interval", interval,
                "--start", "2024-12-30", "--end", "2025-01-02", "--base-url",
                loaded["server"].url], loaded["env"])  # fmt: skip
    per_day = {"1m": 1440, "5m": 288, "15m": 96, "1h": 24, "1d": 1}[interval]
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip() == f"{4 * per_day}/{4 * per_day} klines equal"


def test_verify_klines_reports_a_kline_one_tick_off(
    archive: Archive, loaded: Any, tmp_path: Path
) -> None:
    opened = tamper_kline(archive.root, "ETHUSDT", "1m", date(2025, 1, 2), 700)
    env = {**loaded["env"], "CRYPTOLAB_CACHE_DIR": str(tmp_path / "fresh-cache")}
    with serving(archive.root) as server:
        done = run(["verify", "klines", "--symbol", "ETHUSDT", "--interval", "1m",
                    "--start", "2025-01-02", "--end", "2025-01-02", "--base-url", server.url],
                   env)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    when = datetime.fromtimestamp(opened / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert done.returncode == 1
    assert lines[-1] == "1439/1440 klines equal"
    assert len(lines) == 2 and lines[0].startswith(f"{when} close: binance "), lines
    binance, ours = (Decimal(v) for v in lines[0].split("binance ")[1].split(" ours "))
    assert binance - ours == Decimal("0.01") and when >= "2025-01-02T11:40:00Z"


def test_bad_input_gets_one_clear_line_each(archive: Archive, tmp_path: Path) -> None:
    env = environment(tmp_path / "data", CRYPTOLAB_CACHE_DIR=str(tmp_path / "cache"))
    with serving(archive.root) as server:
        backwards = run(["history", "load", "--symbols", "BTCUSDT", "--start", "2025-01-02",
                         "--end", "2025-01-01", "--base-url", server.url], env)  # fmt: skip
        unknown = run(["history", "load", "--symbols", "NOSUCHCOIN", "--start", "2024-12-30",
                       "--end", "2025-01-02", "--base-url", server.url], env)  # fmt: skip
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unreachable = run(["history", "load", "--symbols", "BTCUSDT", "--start", "2025-01-01",
                       "--end", "2025-01-01", "--base-url", closed], env)  # fmt: skip

    assert backwards.returncode == 2
    assert backwards.stderr.strip().splitlines() == [
        "cryptolab: error: --start 2025-01-02 is after --end 2025-01-01: give the first day, "
        "then the last (both inclusive)"
    ]
    assert unknown.returncode == 1
    assert [line for line in unknown.stdout.splitlines() if line.startswith("missing")] == [
        "missing: no trades published for NOSUCHCOIN from 2024-12-30 to 2025-01-02 (4 files "
        "404): is the symbol right?"
    ]
    assert unreachable.returncode == 2
    errors = [line for line in unreachable.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(
        f"cryptolab: error: cannot reach {closed} ("
    ), unreachable.stderr
    assert dump(env)["trades"] == []  # nothing half-loaded


def test_a_store_another_process_owns_is_refused(archive: Archive, tmp_path: Path) -> None:
    """While a pipeline (here: any process) has the embedded store open, history load says so
    and changes nothing."""
    env = environment(tmp_path / "data", CRYPTOLAB_CACHE_DIR=str(tmp_path / "cache"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom cryptolab.settings import load_settings\n"
         "from cryptolab.store import open_store\nstore = open_store(load_settings())\n"
         "print('open', flush=True)\ntime.sleep(120)"],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with serving(archive.root) as server:
            done = run(["history", "load", "--symbols", "BTCUSDT", "--start", "2025-01-01",
                        "--end", "2025-01-01", "--base-url", server.url], env)  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert "in use by another process" in errors[0]
    assert dump(env)["trades"] == []


def test_a_full_disk_during_download_stops_cleanly(archive: Archive, tmp_path: Path) -> None:
    from tests.reliability.disk import fill, small_disk

    with small_disk(tmp_path / "cache", 1) as cache, serving(archive.root) as server:
        ballast = fill(cache)
        with ballast.open("r+b") as handle:  # room for about one day's file, not two
            handle.truncate(ballast.stat().st_size - 60_000)
        env = environment(tmp_path / "data", CRYPTOLAB_CACHE_DIR=str(cache))
        done = run(["history", "load", "--symbols", "BTCUSDT", "--start", "2024-12-30",
                    "--end", "2025-01-02", "--base-url", server.url], env)  # fmt: skip
        stored = dump(env)
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert errors[0].startswith("cryptolab: error: no space left on the device of ")
    by_file = stored["files"]
    complete = archive.trades[archive.trades.day.isin(
        [date.fromisoformat(name[-14:-4]) for name in by_file])]  # fmt: skip
    assert (
        len(stored["trades"])
        == sum(by_file.values())
        == len(complete[complete.symbol == "BTCUSDT"])
    )
    assert os.path.isdir(cache)
