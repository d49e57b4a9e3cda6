"""A store written by the release before microsecond trade times (tests/fixtures/store_v1, made
by tests/fixtures/make_store_v1.py with commit 95a35e2's code) opens with this release, is
upgraded in place, says so once in the log, and still holds every row, exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.e2e.helpers import environment
from tests.reference import reference_candles, tape_trades

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
UPGRADED = "store upgraded in place"

DUMP = """
import json, logging, sys
from cryptolab.settings import load_settings
from cryptolab.store import open_store
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
store = open_store(load_settings())
table = lambda name: store.table(name)
trades = store.query_rows(
    "SELECT symbol, trade_id, toString(price), toString(qty), toUnixTimestamp64Micro(trade_time), "
    f"is_buyer_maker, toTypeName(trade_time) FROM {table('trades')} ORDER BY symbol, trade_id")
candles = store.query_rows(
    "SELECT symbol, toUnixTimestamp64Milli(window_start), toString(open), toString(close), "
    f"toString(volume), trades FROM {table('candles_10s')} FINAL ORDER BY symbol, window_start")
rejected = store.query_rows(f"SELECT topic, reason FROM {table('quarantine')}")
print(json.dumps({"trades": trades, "candles": candles, "rejected": rejected}, default=str))
"""


def open_and_dump(data_dir: Path) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-c", DUMP],
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), done.stderr


def test_a_store_of_the_previous_release_is_upgraded_in_place_with_every_row(
    tmp_path: Path,
) -> None:
    shutil.copytree(FIXTURES / "store_v1", tmp_path / "clickhouse")
    dumped, log = open_and_dump(tmp_path)
    assert log.count(UPGRADED) == 1, log
    assert "rows=240 (all kept)" in log

    reference = tape_trades(FIXTURES / "store_v1.jsonl").sort_values(["symbol", "trade_id"])
    assert len(reference) == 240
    want = [
        [s, int(t), f"{p.normalize():f}", f"{q.normalize():f}", int(tt), bool(m)]
        for s, t, p, q, tt, m in reference[
            ["symbol", "trade_id", "price", "qty", "trade_time", "m"]
        ].itertuples(index=False)
    ]
    got = [
        [s, t, f"{Decimal(p).normalize():f}", f"{Decimal(q).normalize():f}", tt, m]
        for s, t, p, q, tt, m, _ in dumped["trades"]
    ]
    assert got == want
    assert {row[-1] for row in dumped["trades"]} == {"DateTime64(6, 'UTC')"}

    candles = reference_candles(reference)
    assert [(s, w, int(n)) for s, w, _, _, _, n in dumped["candles"]] == [
        (s, w, c["trades"]) for (s, w), c in sorted(candles.items())
    ]
    assert all(
        Decimal(o) == candles[(s, w)]["open"] and Decimal(c) == candles[(s, w)]["close"]
        for s, w, o, c, _, _ in dumped["candles"]
    )
    assert [topic for topic, _ in dumped["rejected"]] == ["tape:store_v1.jsonl"]

    again, log = open_and_dump(tmp_path)  # upgraded once: the next start changes nothing
    assert UPGRADED not in log
    assert again == dumped
