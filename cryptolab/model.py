"""The Trade record and its schemas (Python, Kafka JSON, Spark, ClickHouse) in one place.

Prices and quantities travel as decimal *strings* exactly as Binance sent them, and become
``Decimal(18, 8)`` in Spark and ClickHouse, so OHLC, volume and quote volume are exact.

Times keep the source's precision. Binance gives milliseconds by default and microseconds in
its 2025+ spot files and on the live stream with ``timeUnit=MICROSECOND``; a raw value tells
its unit by its size (:func:`to_micros`). A Trade holds every time in **microseconds** since the
epoch (a millisecond source is multiplied by 1000, exactly), and ClickHouse stores them as
``DateTime64(6)``.

The Kafka value contract (JSON)::

    {"time_unit":"us","symbol":"BTCUSDT","trade_id":4242424242,"price":"97000.01000000",
     "qty":"0.00150000","trade_time":1732867200120000,"event_time":1732867200123000,
     "is_buyer_maker":true,"ingest_time":1732867200125311}

``time_unit`` was added with microsecond precision: a value *without* it comes from an earlier
release (or another producer following the old contract) and its three times are
milliseconds. Readers (:meth:`Trade.from_json`, the Spark job) accept both.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, cast

import msgspec
import orjson

from cryptolab.errors import FrameError

PRICE_SCALE = 8
"""Binance quotes prices and quantities with at most 8 decimals."""
MAX_DECIMAL = Decimal("9999999999.99999999")
"""Largest value of Decimal(18, 8)."""
MAX_QUOTE = 10**12
"""Largest price x quantity of one trade. Larger is no real trade, and a few hundred of them in
one window would overflow the candle's quote volume (Decimal(38, 16)) and fail the query."""

WINDOW_SECONDS = 10

MICROS_FROM = 10**14
"""A raw Binance time at or above this is in microseconds, below it in milliseconds: today's
times are ~1.7e12 ms or ~1.7e15 µs, and the two ranges cannot meet before the year 5138 (ms)
or after 1973 (µs). data.binance.vision's own files switched unit on 2025-01-01 this way."""
MAX_AHEAD_US = 600 * 1_000_000
"""A trade time more than this after the producer's clock (``ingest_time``) is refused: no real
trade is ten minutes in the future, and one far ahead (a fuzzed year 2255) would move the
stream's watermark past every on-time trade, leaving their candles to the reconcile."""
TIME_UNIT = "us"
"""The ``time_unit`` of a Kafka value written by this release (see the module docstring)."""


def to_micros(raw: int) -> int:
    """A raw Binance time (ms or µs, told apart by :data:`MICROS_FROM`) in microseconds."""
    return raw if raw >= MICROS_FROM else raw * 1000


CANDLE_COLUMNS = (
    "symbol",
    "window_start",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "vwap",
    "trades",
    "buy_volume",
    "first_trade_id",
    "last_trade_id",
)
"""Public candle columns, in the order of `cryptolab query candles` CSV output."""


class Trade(msgspec.Struct, frozen=True, gc=False, tag_field="time_unit", tag=TIME_UNIT):
    """One normalized trade: the Kafka message value (JSON, with ``"time_unit":"us"``), keyed
    by ``symbol``. Times are microseconds since the epoch (see the module docstring).

    ``gc=False``: its fields are strings, ints and a bool, so it can never be part of a
    reference cycle, and a batch of thousands of trades does not wake the cyclic GC."""

    symbol: str
    trade_id: int
    price: str
    qty: str
    trade_time: int  # µs since epoch, Binance "T"
    event_time: int  # µs since epoch, Binance "E"
    is_buyer_maker: bool  # Binance "m": True means the taker sold
    ingest_time: int  # µs since epoch, producer clock

    def to_json(self) -> bytes:
        return _encode(self)

    @classmethod
    def from_json(cls, payload: bytes | str) -> Trade:
        """A Kafka value of this release, or of an earlier one (no ``time_unit``: ms times)."""
        unit = _decode_unit(payload).time_unit
        if unit not in (TIME_UNIT, None):
            raise FrameError(f"unknown time_unit {unit!r} (expected {TIME_UNIT!r} or none)")
        trade = _decode_trade(payload)  # accepts a value without the tag as well
        if unit == TIME_UNIT:
            return trade
        return msgspec.structs.replace(
            trade,
            trade_time=trade.trade_time * 1000,
            event_time=trade.event_time * 1000,
            ingest_time=trade.ingest_time * 1000,
        )


class _Unit(msgspec.Struct):
    time_unit: str | None = None


_decode_unit = msgspec.json.Decoder(_Unit).decode
_decode_trade = msgspec.json.Decoder(Trade).decode


TRADE_COLUMNS: tuple[str, ...] = Trade.__struct_fields__
"""The Trade's fields in order: the columns of ``trades`` that the stream and loaders write."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def now_us() -> int:
    return time.time_ns() // 1_000


_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
"""Binance's format ("97000.01000000"). Python's Decimal also reads " 1.5", "1_000", "1e3" and
non-ASCII digits, which Spark reads differently or not at all."""
_SYMBOL = re.compile(r"[A-Za-z0-9]{1,32}")


def _decimal_field(data: dict[str, Any], key: str, name: str) -> str:
    raw = data.get(key)
    if not isinstance(raw, str):
        raise FrameError(f"{name} ({key!r}) must be a decimal string, got {type(raw).__name__}")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise FrameError(f"{name} ({key!r}) is not a number: {raw[:40]!r}") from None
    if not value.is_finite():
        raise FrameError(f"{name} ({key!r}) is not finite: {raw[:40]!r}")
    if value <= 0:
        raise FrameError(f"{name} ({key!r}) must be positive, got {raw[:40]!r}")
    if value > MAX_DECIMAL:
        raise FrameError(f"{name} ({key!r}) is too large: {raw[:40]!r}")
    exponent = value.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and -exponent > PRICE_SCALE
        and value != value.quantize(Decimal(1).scaleb(-PRICE_SCALE))
    ):
        raise FrameError(f"{name} ({key!r}) has more than {PRICE_SCALE} decimals: {raw[:40]!r}")
    if not _PLAIN_DECIMAL.fullmatch(raw):
        raise FrameError(f"{name} ({key!r}) is not a plain decimal like '97000.01': {raw[:40]!r}")
    return raw


def _int_field(data: dict[str, Any], key: str, name: str) -> int:
    raw = data.get(key)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise FrameError(f"{name} ({key!r}) must be an integer, got {type(raw).__name__}")
    if raw < 0 or raw >= 2**63:
        raise FrameError(f"{name} ({key!r}) out of range: {raw}")
    return raw


_encode = msgspec.json.Encoder().encode

# -- the fast path --------------------------------------------------------------------------------
# msgspec decodes a frame into a typed struct (types, ranges and lengths checked in C); the
# decimals, symbol and stream are then checked with a few C-level calls (one regex for both
# decimals). Anything unusual is left to the careful parser below, which decides and explains.

_Id = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
_Plain = Annotated[str, msgspec.Meta(min_length=10, max_length=19)]


class _Data(msgspec.Struct, gc=False):
    e: Literal["trade"]
    E: _Id
    s: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    t: _Id
    p: _Plain
    q: _Plain
    T: _Id
    m: bool


class _Combined(msgspec.Struct, gc=False):
    stream: str
    data: _Data


_decode_combined = msgspec.json.Decoder(_Combined).decode
_CANONICAL = r"(?:[1-9][0-9]{0,9}\.[0-9]{8}|0\.(?!0{8})[0-9]{8})"
_CANONICAL_LINES = re.compile(rf"(?:{_CANONICAL}\n)*{_CANONICAL}")
"""Newline-separated positive decimals as Binance writes them: no leading zero, exactly 8
decimals, at most 10 digits before the point (so at most MAX_DECIMAL), not zero. A value of 10 to
19 characters cannot hide a newline between two such lines, which need 21."""
_MAX_QUOTE_CHARS = 12 + 2 * (PRICE_SCALE + 1)
"""In that format, len(p) + len(q) <= this means at most 12 digits before the two points
together, so price x quantity < 1e12 = MAX_QUOTE."""


def _valid_utf8(frame: str | bytes) -> bool:
    """msgspec does not check the UTF-8 of the fields it skips: bytes must be UTF-8 throughout."""
    if isinstance(frame, str) or frame.isascii():
        return True
    try:
        frame.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _fast_parse(frame: str | bytes, ingest_time: int) -> Trade | None:
    """The common case in ~0.9 µs: a well-formed combined-stream trade in Binance's exact format
    (``<symbol>@trade`` stream, 8-decimal prices). None means "not sure": the careful parser then
    decides and explains."""
    try:
        message = _decode_combined(frame)
    except (msgspec.MsgspecError, ValueError):  # ValueError: a lone surrogate in a str, too
        return None
    data = message.data
    symbol = data.s
    if (
        len(data.p) + len(data.q) > _MAX_QUOTE_CHARS
        or _CANONICAL_LINES.fullmatch(f"{data.p}\n{data.q}") is None
        or not _valid_utf8(frame)
        or message.stream != f"{symbol.lower()}@trade"
        or not (symbol.isascii() and symbol.isalnum())
    ):
        return None
    T, E = data.T, data.E
    trade_time = T if T >= MICROS_FROM else T * 1000
    if trade_time > ingest_time + MAX_AHEAD_US:
        return None
    return Trade(
        symbol,
        data.t,
        data.p,
        data.q,
        trade_time,
        E if E >= MICROS_FROM else E * 1000,
        data.m,
        ingest_time,
    )


def parse_frame(frame: str | bytes, ingest_time: int | None = None) -> Trade:
    """Parse one raw Binance trade frame (combined stream or raw stream) into a Trade.

    A real combined-stream payload::

        {"stream":"btcusdt@trade","data":{"e":"trade","E":1732867200123,"s":"BTCUSDT",
         "t":4242424242,"p":"97000.01000000","q":"0.00150000","T":1732867200120,
         "m":true,"M":true}}

    ``E`` and ``T`` may be milliseconds (Binance's default) or microseconds (``timeUnit=
    MICROSECOND``): both become microseconds (:func:`to_micros`). ``ingest_time`` is in
    microseconds (default: now).

    Raises FrameError with a human-readable reason for anything else.
    """
    fast = _fast_parse(frame, now_us() if ingest_time is None else ingest_time)
    if fast is not None:
        return fast
    message = _loads(frame)
    if not isinstance(message, dict):
        raise FrameError(f"frame must be a JSON object, got {type(message).__name__}")
    stream = message.get("stream")
    data = message.get("data", message) if "stream" in message else message
    if not isinstance(data, dict):
        raise FrameError("'data' must be a JSON object")
    event = data.get("e")
    if event != "trade":
        raise FrameError(f"unknown event type {str(event)[:40]!r} (expected 'trade')")
    symbol = data.get("s")
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise FrameError(
            f"symbol ('s') must be 1-32 ASCII letters and digits, got {str(symbol)[:40]!r}"
        )
    if stream is not None and stream != f"{symbol.lower()}@trade":
        raise FrameError(
            f"stream {str(stream)[:40]!r} does not match symbol {symbol!r} "
            f"(expected '{symbol.lower()}@trade')"
        )
    price, qty = _decimal_field(data, "p", "price"), _decimal_field(data, "q", "quantity")
    if Decimal(price) * Decimal(qty) > MAX_QUOTE:
        raise FrameError(f"price x quantity is too large (> {MAX_QUOTE:.0e}): {price} x {qty}")
    trade_id = _int_field(data, "t", "trade id")
    trade_time = to_micros(_int_field(data, "T", "trade time"))
    event_time = to_micros(_int_field(data, "E", "event time"))
    is_buyer_maker = _bool_field(data, "m", "buyer-maker flag")
    ingest = now_us() if ingest_time is None else ingest_time
    if trade_time > ingest + MAX_AHEAD_US:
        raise FrameError(
            f"trade time ('T') {trade_time} µs is more than {MAX_AHEAD_US // 60_000_000} minutes "
            f"after this machine's clock ({ingest} µs): check the clock, or the frame is wrong"
        )
    return Trade(
        symbol=symbol,
        trade_id=trade_id,
        price=price,
        qty=qty,
        trade_time=trade_time,
        event_time=event_time,
        is_buyer_maker=is_buyer_maker,
        ingest_time=ingest,
    )


def _bool_field(data: dict[str, Any], key: str, name: str) -> bool:
    raw = data.get(key)
    if not isinstance(raw, bool):
        raise FrameError(f"{name} ({key!r}) must be true or false, got {type(raw).__name__}")
    return raw


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(frame: str | bytes) -> Any:
    """JSON as RFC 8259 defines it. orjson first; the standard library for what orjson cannot
    represent (numbers beyond a double, e.g. in a field we ignore, which the fast path accepts
    too). Bytes must be UTF-8; NaN and Infinity are not JSON."""
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        error = exc
    try:
        text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise FrameError(f"invalid JSON: {error}") from None


# -- batches ------------------------------------------------------------------------------------
# The fast path's checks, each done once over the whole batch; a batch where anything is unusual
# falls back to parse_frame, by halves, so the usual frames around an odd one stay fast.

_SPLIT_BELOW = 16


def parse_frames(
    frames: Sequence[str | bytes], ingest_time: int | None = None
) -> list[Trade | FrameError]:
    """:func:`parse_frame` of each frame, in order: a Trade, or the FrameError it raises.

    The same answers as calling parse_frame on each frame, for about half the cost per frame
    when the batch is the common case (well-formed combined-stream trades)."""
    ingest = now_us() if ingest_time is None else ingest_time
    fast = _fast_batch(frames, ingest) if frames else []
    if fast is not None:
        return cast(list[Trade | FrameError], fast)
    if len(frames) >= _SPLIT_BELOW:  # find the unusual frames by halves; the rest stays fast
        half = len(frames) // 2
        return parse_frames(frames[:half], ingest) + parse_frames(frames[half:], ingest)
    out: list[Trade | FrameError] = []
    for frame in frames:
        try:
            out.append(parse_frame(frame, ingest))
        except FrameError as exc:
            out.append(exc)
    return out


def _fast_batch(frames: Sequence[str | bytes], ingest_time: int) -> list[Trade] | None:
    """Trades of a batch of well-formed combined-stream frames; None if anything is unusual.

    Each frame is decoded on its own (a JSON-lines decode of the joined batch would let one frame
    holding two messages and a blank frame trade places). Streams must be ``<symbol>@trade``."""
    try:
        messages = list(map(_decode_combined, frames))
    except (msgspec.MsgspecError, ValueError):
        return None
    data = [m.data for m in messages]
    if any(len(d.p) + len(d.q) > _MAX_QUOTE_CHARS for d in data) or not all(
        map(_valid_utf8, frames)
    ):
        return None
    decimals = "\n".join([d.p for d in data] + [d.q for d in data])
    if _CANONICAL_LINES.fullmatch(decimals) is None:
        return None
    latest = ingest_time + MAX_AHEAD_US
    if any((d.T if d.T >= MICROS_FROM else d.T * 1000) > latest for d in data):
        return None
    symbols = [d.s for d in data]
    letters = "".join(symbols)  # no newline in any symbol, so the joins below are unambiguous
    if not (
        letters.isascii()
        and letters.isalnum()
        and "@trade\n".join(symbols).lower() + "@trade" == "\n".join([m.stream for m in messages])
    ):
        return None
    return [
        Trade(
            d.s,
            d.t,
            d.p,
            d.q,
            d.T if d.T >= MICROS_FROM else d.T * 1000,
            d.E if d.E >= MICROS_FROM else d.E * 1000,
            d.m,
            ingest_time,
        )
        for d in data
    ]
