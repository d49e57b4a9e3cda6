import json

import orjson
import pytest

from cryptolab.errors import FrameError
from cryptolab.model import Trade, parse_frame, parse_frames

NOW = 1_800_000_000_000_000  # µs, 2027-01-15: the producer's clock, after every trade here

GOOD = {
    "stream": "btcusdt@trade",
    "data": {
        "e": "trade",
        "E": 1732867200123,
        "s": "BTCUSDT",
        "t": 4242,
        "p": "97000.01000000",
        "q": "0.00150000",
        "T": 1732867200120,
        "m": True,
        "M": True,
    },
}


def frame(**changes: object) -> str:
    data = {**GOOD["data"], **changes}  # type: ignore[dict-item]
    return orjson.dumps({"stream": GOOD["stream"], "data": data}).decode()


def framed(stream: str, **changes: object) -> str:
    return orjson.dumps({"stream": stream, "data": {**GOOD["data"], **changes}}).decode()  # type: ignore[dict-item]


def test_parses_a_combined_stream_frame_exactly() -> None:
    trade = parse_frame(frame(), ingest_time=NOW)
    assert trade == Trade(
        "BTCUSDT", 4242, "97000.01000000", "0.00150000", 1732867200120_000, 1732867200123_000,
        True, NOW,
    )  # fmt: skip


def test_microsecond_frames_keep_their_microseconds() -> None:
    """Binance's timeUnit=MICROSECOND: E and T in µs; both parsers keep every digit."""
    micro = frame(T=1735689600000123, E=1735689600000999)
    for trade in (parse_frame(micro, ingest_time=NOW), parse_frames([micro] * 20, NOW)[0]):
        assert isinstance(trade, Trade)
        assert (trade.trade_time, trade.event_time) == (1735689600000123, 1735689600000999)


def test_the_unit_is_told_by_size_at_the_boundary() -> None:
    late = 2**62  # a clock after year 5138, so the times below are not "ahead" of it
    assert parse_frame(frame(T=10**14 - 1, E=0), late).trade_time == (10**14 - 1) * 1000  # ms
    assert parse_frame(frame(T=10**14, E=0), late).trade_time == 10**14  # µs
    assert parse_frame(frame(T=0, E=0), late).trade_time == 0


def test_the_kafka_value_says_its_unit_and_old_values_read_as_milliseconds() -> None:
    trade = parse_frame(frame(), ingest_time=1732867200125311)
    value = orjson.loads(trade.to_json())
    assert value["time_unit"] == "us" and value["trade_time"] == 1732867200120_000
    old = {k: v for k, v in value.items() if k != "time_unit"}  # an earlier release's value
    old.update(trade_time=1732867200120, event_time=1732867200123, ingest_time=1732867200125)
    assert Trade.from_json(orjson.dumps(old)) == Trade(
        "BTCUSDT", 4242, "97000.01000000", "0.00150000", 1732867200120_000, 1732867200123_000,
        True, 1732867200125_000,
    )  # fmt: skip
    with pytest.raises(FrameError, match="unknown time_unit 'ns'"):
        Trade.from_json(orjson.dumps({**value, "time_unit": "ns"}))


def test_parses_a_raw_stream_frame() -> None:
    trade = parse_frame(orjson.dumps(GOOD["data"]))
    assert trade.symbol == "BTCUSDT" and trade.trade_id == 4242


def test_trade_json_roundtrip_keeps_decimal_strings() -> None:
    trade = parse_frame(frame(p="0.00000001"))
    again = Trade.from_json(trade.to_json())
    assert again == trade and again.price == "0.00000001"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (frame(e="aggTrade"), "unknown event type 'aggTrade'"),
        (frame(p="-1.0"), "price ('p') must be positive"),
        (frame(q="0"), "quantity ('q') must be positive"),
        (frame(q=1.5), "quantity ('q') must be a decimal string"),
        (frame(p="abc"), "price ('p') is not a number"),
        (frame(p="NaN"), "price ('p') is not finite"),
        (frame(p="1e30"), "price ('p') is too large"),
        (frame(p="1.123456789"), "more than 8 decimals"),
        (frame(t="12"), "trade id ('t') must be an integer"),
        (frame(t=True), "trade id ('t') must be an integer"),
        (frame(T=-5), "trade time ('T') out of range"),
        (frame(m="yes"), "buyer-maker flag ('m') must be true or false"),
        (frame(s="BTC-USDT"), "symbol ('s') must be 1-32 ASCII letters and digits"),
        (frame(s="ETHUSDT"), "does not match symbol 'ETHUSDT'"),
        # found by tests/reliability/test_fuzz_feed.py: Python's Decimal and str.isalnum accept
        # these, Spark reads them differently (or rounds them), Binance never sends them
        (frame(p="1e3"), "price ('p') is not a plain decimal"),
        (frame(p=" 1.5"), "price ('p') is not a plain decimal"),
        (frame(q="1_000"), "quantity ('q') is not a plain decimal"),
        (frame(q="1."), "quantity ('q') is not a plain decimal"),
        # found while fuzzing the Spark parser: a few hundred of these in one window overflowed
        # the candle's quote volume and failed the streaming query
        (frame(p="9999999999.99999999", q="9999999999.99999999"), "price x quantity is too large"),
        (frame(p="1000000", q="1000000.00000001"), "price x quantity is too large"),
        (frame(q="\u0661"), "quantity ('q') is not a plain decimal"),
        (framed("\u00e4bc@trade", s="\u00c4BC"), "must be 1-32 ASCII letters and digits"),
        (framed("btcusdt@depth"), "expected 'btcusdt@trade'"),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_frame(raw)
    assert reason in info.value.reason


def test_a_huge_number_in_an_ignored_field_does_not_reject_the_trade() -> None:
    """Both parser paths agree: orjson cannot hold it, the standard library can."""
    huge = frame()[:-2] + ',"x":' + "9" * 400 + "}}"
    assert parse_frame(huge).trade_id == 4242
    with pytest.raises(FrameError, match="not a plain decimal"):
        parse_frame(frame(p="1.")[:-2] + ',"x":' + "9" * 400 + "}}")


def test_a_lone_surrogate_gives_a_reason_not_a_crash() -> None:
    """Found by tests/reliability/test_fuzz_feed.py: msgspec raised UnicodeEncodeError for a str
    with a lone surrogate and UnicodeDecodeError for its UTF-8-like bytes."""
    good = json.dumps(GOOD, ensure_ascii=False)
    with pytest.raises(FrameError, match="unknown event type"):
        parse_frame(good.replace('"trade"', '"trad\ud800e"'))
    with pytest.raises(FrameError, match="invalid JSON"):
        parse_frame(good.encode()[:-1] + b'"\xed\xa0\x80"}')
    assert parse_frame(good[:-2] + ',"x":"\ud800"}}').trade_id == 4242
    # invalid UTF-8 in a field the fast path skips: both paths reject the frame
    with pytest.raises(FrameError, match="invalid JSON"):
        parse_frame(good.encode()[:-2] + b',"M":"\xed\xa0\x80"}}')


def test_the_largest_quote_value_is_accepted_on_both_paths() -> None:
    assert parse_frame(frame(p="1000000", q="1000000")).qty == "1000000"
    assert parse_frame(frame(p="1000000.00000000", q="999999.99999999")).price == "1000000.00000000"


def test_trailing_zeros_beyond_eight_decimals_are_fine() -> None:
    assert parse_frame(frame(q="1.0000000000")).qty == "1.0000000000"


def test_a_batch_keeps_each_frame_to_itself() -> None:
    """Two messages in one frame and an empty frame: two reasons, not two trades shifted by one."""
    other = frame(t=4243)
    batch = [frame(), f"{frame()} {other}", "", other]
    results = parse_frames(batch, ingest_time=NOW)
    assert results[0] == parse_frame(frame(), ingest_time=NOW)
    assert isinstance(results[1], FrameError) and "invalid JSON" in results[1].reason
    assert isinstance(results[2], FrameError) and "invalid JSON" in results[2].reason
    assert results[3] == parse_frame(other, ingest_time=NOW)


def test_a_trade_far_ahead_of_the_clock_is_refused_on_both_paths() -> None:
    """A valid-looking trade ten minutes or more after the producer's clock (a fuzzed year 2255
    did this) would move the stream's watermark past every on-time trade: refused, with why."""
    clock = 1732867200120_000  # GOOD's trade time, in µs
    just = frame(T=1732867200120 + 600_000)  # exactly ten minutes ahead: still a trade
    assert parse_frame(just, ingest_time=clock).trade_time == clock + 600_000_000
    ahead = frame(T=1732867200120 + 600_001)
    with pytest.raises(FrameError, match="more than 10 minutes after this machine's clock"):
        parse_frame(ahead, ingest_time=clock)
    batch = parse_frames([frame()] * 20 + [ahead], clock)
    assert all(isinstance(t, Trade) for t in batch[:20])
    assert isinstance(batch[20], FrameError)
