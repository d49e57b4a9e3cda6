"""Property tests of the feed parser: whatever arrives, the producer gets a Trade or a FrameError
with a reason — never another exception — and a Trade is always exactly the frame's values, for
exactly the frames the independent classification (tests/reliability/frames.py) calls good."""

from decimal import Decimal

from hypothesis import HealthCheck, given, settings

from cryptolab.errors import FrameError
from cryptolab.model import MAX_DECIMAL, Trade, parse_frame
from tests.reliability.frames import classify_frame, expected_trade, frames


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_any_frame_gives_a_trade_or_a_reason(frame: str | bytes) -> None:
    verdict = classify_frame(frame)
    try:
        trade = parse_frame(frame, ingest_time=1)
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
