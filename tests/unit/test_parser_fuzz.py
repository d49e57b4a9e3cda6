"""Property tests of the feed parser: whatever arrives, the producer gets a Trade or a FrameError
with a reason — never another exception — and a Trade is always exactly the frame's values."""

import json
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolab.errors import FrameError
from cryptolab.model import MAX_DECIMAL, Trade, parse_frame

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
