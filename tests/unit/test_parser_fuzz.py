"""Property tests of the feed parser: whatever arrives, the producer gets a Trade or a FrameError
with a reason — never another exception — and a Trade is always exactly the frame's values, for
exactly the frames the independent classification (tests/reliability/frames.py) calls good.
Under CI (the "ci" hypothesis profile, tests/conftest.py) the examples are derandomized: the
same on every run, so a failure reproduces."""

import json
import time
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolab.errors import FrameError
from cryptolab.model import MAX_DECIMAL, Trade, parse_frame, parse_frames
from tests.reliability.frames import classify_frame, expected_trade, frames
from tests.tools import in_ci

CLOCK = time.time_ns() // 1000  # µs: the producer's clock for every parse here


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_any_frame_gives_a_trade_or_a_reason(frame: str | bytes) -> None:
    verdict = classify_frame(frame, CLOCK)
    try:
        trade = parse_frame(frame, ingest_time=CLOCK)
    except FrameError as exc:
        assert exc.reason
        assert verdict is not None, f"good frame rejected: {exc.reason}"
        return
    assert verdict is None, f"bad frame ({verdict}) accepted"
    assert isinstance(trade, Trade)
    assert (
        trade.symbol,
        trade.trade_id,
        trade.price,
        trade.qty,
        trade.trade_time,
        trade.event_time,
        trade.is_buyer_maker,
    ) == expected_trade(frame)
    for text in (trade.price, trade.qty):
        assert Decimal(0) < Decimal(text) <= MAX_DECIMAL
    assert Trade.from_json(trade.to_json()) == trade


PLAIN = st.from_regex(r"(0|[1-9][0-9]{0,9})\.[0-9]{8}", fullmatch=True).filter(
    lambda text: Decimal(text) > 0
)
"""Decimals as Binance writes them."""
EDGE = st.one_of(
    st.from_regex(r"[0-9]{1,10}(\.[0-9]{0,8})?", fullmatch=True),
    st.from_regex(r"[0-9]{11}|0*\.?0*|[0-9]\.[0-9]{9}|1\.|\.5|-1|1\.0000000\n", fullmatch=True),
)
"""Other decimals: valid but written differently, zero, or past the limits."""
VALID_ID = st.integers(min_value=0, max_value=2**63 - 1)
EDGE_ID = st.sampled_from([-1, 2**63, 2**64, 0, 2**63 - 1])


@st.composite
def trade_frames(draw: st.DrawFn, edge: bool = False) -> str:
    """Combined-stream trades with varied values: valid ones (the batch parser's fast path) or,
    with ``edge``, ones with values at and just past the limits."""
    symbol = draw(st.sampled_from(["BTCUSDT", "ETHUSDT", "1000SATSUSDT", "btcusdt"]))
    decimal, ids = (
        (st.one_of(PLAIN, EDGE), st.one_of(VALID_ID, EDGE_ID)) if edge else (PLAIN, VALID_ID)
    )
    data = {
        "e": "trade",
        "E": draw(ids),
        "s": symbol,
        "t": draw(ids),
        "p": draw(decimal),
        "q": draw(decimal),
        "T": draw(ids),
        "m": draw(st.booleans()),
        "M": True,
    }
    stream = f"{symbol.lower()}@trade"
    if edge:
        stream = draw(st.sampled_from([stream, f"{symbol}@trade", f"{stream}\n", "ethusdt@trade"]))
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":"))


def _one_by_one(batch: list[str | bytes]) -> list[Trade | str]:
    out: list[Trade | str] = []
    for frame in batch:
        try:
            out.append(parse_frame(frame, ingest_time=CLOCK))
        except FrameError as exc:
            out.append(exc.reason)
    return out


@settings(max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(trade_frames(), max_size=40),
    st.lists(
        st.tuples(
            st.integers(0, 40), frames() | trade_frames(edge=True) | st.sampled_from(["", "\n"])
        ),
        max_size=2,
    ),
    st.sampled_from(["str", "bytes", "mixed"]),
)
def test_a_batch_gives_exactly_what_each_frame_gives_alone(
    good: list[str], odd: list[tuple[int, str | bytes]], kind: str
) -> None:
    batch: list[str | bytes] = [
        f.encode() if kind == "bytes" or (kind == "mixed" and i % 2) else f
        for i, f in enumerate(good)
    ]
    for index, frame in odd:  # a few unusual frames anywhere in the batch
        batch.insert(min(index, len(batch)), frame)
    got = [r.reason if isinstance(r, FrameError) else r for r in parse_frames(batch, CLOCK)]
    assert got == _one_by_one(batch)


def test_property_tests_draw_the_same_examples_under_ci() -> None:
    """Under CI (tests/conftest.py loads the "ci" profile) every @given test is derandomized, so a
    CI failure reproduces; locally they explore new examples on each run."""
    assert settings.get_profile("ci").derandomize is True
    assert settings.get_profile("ci").database is None
    default = settings.default
    assert default is not None and default.derandomize is in_ci()
