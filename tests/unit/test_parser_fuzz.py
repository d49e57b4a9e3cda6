"""Property tests of the feed parser: whatever arrives, the producer gets a Trade or a FrameError
with a reason — never another exception — and a Trade is always exactly the frame's values."""

import json
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolab.errors import FrameError
from cryptolab.model import MAX_DECIMAL, Trade, parse_frame, parse_frames

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)
decimal_text = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"-?[0-9]{0,12}(\.[0-9]{0,10})?", fullmatch=True),
    st.text(max_size=12),
)
field_values = st.one_of(
    json_values, decimal_text, st.integers(min_value=-(2**70), max_value=2**70)
)


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    """Mostly trade-shaped frames with one or more fields replaced by anything."""
    data = {
        "e": "trade",
        "E": 1793491200123,
        "s": "BTCUSDT",
        "t": 5400192939,
        "p": "97000.01000000",
        "q": "0.00150000",
        "T": 1793491200120,
        "m": True,
        "M": True,
    }
    for key in draw(st.lists(st.sampled_from([*data, "x"]), max_size=4)):
        data[key] = draw(field_values)
    stream = draw(st.sampled_from(["btcusdt@trade", "ethusdt@trade", "", 7]))
    message = draw(st.sampled_from(["combined", "raw", "garbage"]))
    if message == "garbage":
        return draw(st.binary(max_size=60) | st.text(max_size=60))
    body = {"stream": stream, "data": data} if message == "combined" else data
    return json.dumps(body, separators=(",", ":"))


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_any_frame_gives_a_trade_or_a_reason(frame: str | bytes) -> None:
    try:
        trade = parse_frame(frame, ingest_time=1)
    except FrameError as exc:
        assert exc.reason
        return
    assert isinstance(trade, Trade)
    message = json.loads(frame)
    data = message.get("data", message) if "stream" in message else message
    assert (trade.symbol, trade.trade_id, trade.price, trade.qty) == (
        data["s"],
        data["t"],
        data["p"],
        data["q"],
    )
    assert (trade.trade_time, trade.event_time, trade.is_buyer_maker) == (
        data["T"],
        data["E"],
        data["m"],
    )
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
            out.append(parse_frame(frame, ingest_time=1))
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
    got = [r.reason if isinstance(r, FrameError) else r for r in parse_frames(batch, 1)]
    assert got == _one_by_one(batch)
