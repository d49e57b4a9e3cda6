import itertools
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from cryptolab.errors import TapeError
from cryptolab.feeds.source import demo_tape
from cryptolab.feeds.tapes.synth import INSTRUMENTS, synth_frames
from cryptolab.feeds.tapes.tape import Pacer, looped_live, read_frames, shift_frame, write_frames
from cryptolab.model import parse_frame


def test_gzip_and_plain_tapes_roundtrip(tmp_path: Path) -> None:
    frames = list(synth_frames(["BTCUSDT"], 5, 10, seed=1))
    for name in ("t.jsonl", "t.jsonl.gz"):
        assert write_frames(tmp_path / name, frames) == len(frames)
        assert list(read_frames(tmp_path / name)) == frames


def test_missing_and_corrupt_tapes_raise_tape_error(tmp_path: Path) -> None:
    with pytest.raises(TapeError, match="not found"):
        list(read_frames(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(TapeError, match="cannot read"):
        list(read_frames(bad))


def test_synth_is_deterministic_and_realistic() -> None:
    a = list(synth_frames(["BTCUSDT", "ETHUSDT"], 120, 20, seed=7))
    assert a == list(synth_frames(["BTCUSDT", "ETHUSDT"], 120, 20, seed=7))
    assert a != list(synth_frames(["BTCUSDT", "ETHUSDT"], 120, 20, seed=8))
    trades = [parse_frame(f) for f in a]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        mine = [t for t in trades if t.symbol == symbol]
        # about 20 trades/s on average over 120 s
        assert 1600 < len(mine) < 3200
        ids = [t.trade_id for t in mine]
        assert ids == list(range(ids[0], ids[0] + len(ids))), "consecutive trade ids"
        tick = INSTRUMENTS[symbol].tick
        assert all(Decimal(t.price) % tick == 0 for t in mine), "prices on the tick size"
        assert {t.is_buyer_maker for t in mine} == {True, False}
    times = [t.event_time for t in trades]
    assert times == sorted(times), "frames come in arrival (E) order"


def test_synth_jitter_puts_trades_out_of_trade_time_order() -> None:
    trades = [parse_frame(f) for f in synth_frames(["BTCUSDT"], 60, 30, seed=3, jitter_ms=2500)]
    trade_times = [t.trade_time for t in trades]
    assert trade_times != sorted(trade_times)
    assert all(0 <= t.event_time - t.trade_time <= 2_500_000 for t in trades)  # µs


def test_pacer_sleeps_by_event_time_and_speed() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(speed=2.0, sleep=sleep, clock=lambda: now[0])
    for event_time in (1_000, 2_000, 2_000, 5_000, None, 4_000):
        pacer.wait_for(event_time)
    assert slept == pytest.approx([0.5, 1.5])
    fast = Pacer(speed=None, sleep=sleep, clock=lambda: now[0])
    fast.wait_for(1)
    fast.wait_for(10_000_000)
    assert len(slept) == 2


def test_shift_and_loop_keep_ids_and_times_increasing() -> None:
    frame = next(synth_frames(["BTCUSDT"], 1, 5, seed=1))
    shifted = orjson.loads(shift_frame(frame, 1000, 5))["data"]
    original = orjson.loads(frame)["data"]
    assert shifted["t"] == original["t"] + 5 and shifted["T"] == original["T"] + 1000
    assert shift_frame("garbage", 1, 1) == "garbage"
    lap_size = sum(1 for _ in read_frames(demo_tape()))
    looped = looped_live(demo_tape())
    # read unpaced: the second lap's times are ahead of the clock, so parse with a later one
    trades = [parse_frame(next(looped), ingest_time=2**62) for _ in range(lap_size + 50)]
    btc = [t for t in trades if t.symbol == "BTCUSDT"]
    assert [t.trade_id for t in btc] == list(range(btc[0].trade_id, btc[0].trade_id + len(btc)))
    assert all(b.trade_time >= a.trade_time for a, b in itertools.pairwise(btc))


def test_sample_tape_is_shipped_and_valid() -> None:
    trades = [parse_frame(f) for f in read_frames(demo_tape())]
    assert {t.symbol for t in trades} == {"BTCUSDT", "ETHUSDT", "BNBUSDT"}
    assert len(trades) > 5000
