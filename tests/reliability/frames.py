"""Hypothesis strategies for bad input, and an independent classification of what is good.

The classification shares no code with cryptolab: it parses with the standard json module and
``decimal`` and states the rules of a usable trade once, so a parser bug cannot hide in both.

- :func:`feed_frames`: raw WebSocket frames (text or binary) for the producer;
- :func:`kafka_values`: raw Kafka values another producer could write on the trades topic;
- :func:`generate`: draw N examples of a strategy in bulk (one ``@given`` run from a seed), so a
  test can push all of them through one real pipeline run;
- :func:`fuzz_seed`: the seed of this run: ``FUZZ_SEED`` from the environment (to replay a
  run), else a new one per pytest process. Each fuzz test prints it and puts it in its row.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

T = TypeVar("T")

MAX_DECIMAL = Decimal("9999999999.99999999")  # Decimal(18, 8)
MAX_QUOTE = Decimal(10**12)  # price x qty of one trade; more would overflow a candle's sum
INT_LIMIT = 2**63
MAX_MILLIS = 10_413_791_999_999  # 2299-12-31T23:59:59.999Z, the end of ClickHouse DateTime64
MAX_MICROS = MAX_MILLIS * 1000 + 999
US_FROM = 10**14  # a raw Binance time of 15+ digits is in microseconds
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
BASE_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z
HUGE = 100_000
"""Length of the huge strings (chars)."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)
"""Any JSON value, NaN and +-Infinity included (json.dumps writes them as bare literals)."""
decimal_text = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"-?[0-9]{0,12}(\.[0-9]{0,10})?", fullmatch=True),
    st.sampled_from(["1e3", " 1.5", "1_000", "\u0661", "+5", "1.", ".5", "1e400", "0.000000001"]),
    st.sampled_from(["9999999999.99999999", "1000000", "1000000.00000001", "999999.99999999"]),
    st.text(max_size=12),
)
huge_values = st.one_of(
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.integers(min_value=10**30, max_value=10**400),
    st.sampled_from([1e308, -1e308, 1e-320, 2**53 + 1, "9" * 400, "0." + "0" * 300 + "1"]),
)
field_values = st.one_of(
    json_values, decimal_text, huge_values, st.integers(min_value=-(2**70), max_value=2**70)
)
good_decimals = st.builds(
    lambda head, frac: f"{head}.{frac}" if frac else str(head),
    st.integers(min_value=0, max_value=99_999),
    st.from_regex(r"[0-9]{0,8}", fullmatch=True),
).filter(lambda text: Decimal(text) > 0)


def _trade_data(draw: st.DrawFn) -> dict[str, Any]:
    """A good trade event, its times in ms or (Binance's timeUnit=MICROSECOND) in µs."""
    trade_time = BASE_MS + draw(st.integers(min_value=0, max_value=120_000))
    lag = draw(st.integers(min_value=0, max_value=50))
    if draw(st.booleans()):
        trade_time = trade_time * 1000 + draw(st.integers(min_value=0, max_value=999))
        lag *= 1000
    return {
        "e": "trade",
        "E": trade_time + lag,
        "s": draw(st.sampled_from(SYMBOLS)),
        "t": draw(st.integers(min_value=0, max_value=10**12)),
        "p": draw(good_decimals),
        "q": draw(good_decimals),
        "T": trade_time,
        "m": draw(st.booleans()),
        "M": True,
    }


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    """Mostly trade-shaped frames with one or more fields replaced by anything."""
    data = _trade_data(draw)
    for key in draw(st.lists(st.sampled_from([*data, "x"]), max_size=4)):
        data[key] = draw(field_values)
    own = f"{data['s'].lower()}@trade" if isinstance(data["s"], str) else "btcusdt@trade"
    stream = draw(st.sampled_from([own, own, "btcusdt@depth", "ethusdt@trade", "", 7, None]))
    message = draw(st.sampled_from(["combined", "combined", "raw", "garbage"]))
    if message == "garbage":
        return draw(st.binary(max_size=60) | st.text(max_size=60))
    body = {"stream": stream, "data": data} if message == "combined" else data
    if stream is None and message == "combined":
        body = {"data": data}
    return json.dumps(body, separators=(",", ":"))


FEED_MIX = {
    "as is": 6_500,
    "utf-8 bytes": 800,
    "binary": 1_000,
    "utf-16": 400,
    "surrogate": 600,
    "event": 600,
    "huge": 100,
}
"""How many frames of each kind a feed fuzz run draws (10,000 in all)."""


@st.composite
def feed_frames(draw: st.DrawFn, variant: str) -> str | bytes:
    """What a WebSocket can deliver: the frames above (``as is``, or as UTF-8 bytes), binary
    frames (bytes that are not UTF-8, or JSON in UTF-16), a str with a lone surrogate, unknown
    events and streams, and huge frames (50k-100k characters)."""
    frame = draw(frames())
    text = frame if isinstance(frame, str) else frame.decode("latin-1")
    if variant == "as is":
        return frame
    if variant == "utf-8 bytes":
        return text.encode()
    if variant == "binary":  # one invalid UTF-8 byte somewhere in the frame
        data = text.encode()
        at = draw(st.integers(min_value=0, max_value=len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80"]))
        return data[:at] + bad + data[at:]
    if variant == "utf-16":
        return text.encode("utf-16")
    if variant == "surrogate":  # a str no UTF-8 encoder accepts
        at = draw(st.integers(min_value=0, max_value=len(text)))
        return text[:at] + "\ud800" + text[at:]
    if variant == "event":
        event = draw(st.sampled_from(["aggTrade", "depthUpdate", "serverShutdown", "kline", ""]))
        fields = {**_trade_data(draw), "e": event}
        return json.dumps({"stream": f"{fields['s'].lower()}@{event}", "data": fields})
    size = draw(st.integers(min_value=HUGE // 2, max_value=HUGE))
    filler = draw(st.sampled_from(["x", "\u00e9", "\u0000", '"', "\U0001f600"]))
    if draw(st.booleans()):
        return filler * size  # a huge non-JSON frame
    try:
        message = json.loads(text)
    except ValueError:
        return text + filler * size
    if isinstance(message, dict):
        message["x"] = filler * size  # a huge extra field: harmless to a good trade
    return json.dumps(message)


def _is_plain_decimal(text: str) -> bool:
    return re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) is not None


def decimal_problem(value: Any) -> str | None:
    """None for a usable price or quantity: a plain decimal string, 0 < v <= max of
    Decimal(18, 8), no significant digit beyond the 8th decimal."""
    if not isinstance(value, str):
        return "not a string"
    if not _is_plain_decimal(value):
        return "not a plain decimal"
    number = Decimal(value)
    if not 0 < number <= MAX_DECIMAL:
        return "out of range"
    if number != number.quantize(Decimal("1e-8")):
        return "more than 8 decimals"
    return None


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decoder() -> json.JSONDecoder:
    return json.JSONDecoder(parse_constant=_reject_constant)


def _loads(data: str | bytes) -> Any:
    """Strict RFC 8259 JSON (no NaN/Infinity; numbers of any size), or ValueError."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return _decoder().decode(text)


def classify_frame(frame: str | bytes, clock_us: int | None = None) -> str | None:
    """None if ``frame`` is a usable Binance trade frame (combined or raw stream) for a producer
    whose clock reads ``clock_us`` (default: now), else what is wrong with it."""
    try:
        message = _loads(frame)
    except (ValueError, UnicodeError, RecursionError):
        return "not JSON"
    if not isinstance(message, dict):
        return "not an object"
    data = message.get("data", message) if "stream" in message else message
    if not isinstance(data, dict) or data.get("e") != "trade":
        return "not a trade event"
    symbol = data.get("s")
    if not isinstance(symbol, str) or not re.fullmatch(r"[A-Za-z0-9]{1,32}", symbol):
        return "bad symbol"
    if "stream" in message and message["stream"] != symbol.lower() + "@trade":
        return "stream does not match"
    if not all(_int_in(data.get(k), 0, INT_LIMIT - 1) for k in ("t", "T", "E")):
        return "bad id or time"
    if decimal_problem(data.get("p")) or decimal_problem(data.get("q")):
        return "bad price or qty"
    if Decimal(data["p"]) * Decimal(data["q"]) > MAX_QUOTE:
        return "price x qty too large"
    if not isinstance(data.get("m"), bool):
        return "bad flag"
    clock = time.time_ns() // 1000 if clock_us is None else clock_us
    if _micros(data["T"]) > clock + AHEAD_US:
        return "trade time ahead of the clock"
    return None


AHEAD_US = 600_000_000
"""Ten minutes: a trade later than the producer's clock by more than this is refused."""


def _micros(raw: int) -> int:
    return raw if raw >= US_FROM else raw * 1000


def expected_trade(frame: str | bytes) -> tuple[Any, ...]:
    """(symbol, trade_id, price, qty, trade_time, event_time, is_buyer_maker) of a good frame,
    times in microseconds."""
    message = _loads(frame)
    data = message.get("data", message) if "stream" in message else message
    times = tuple(v if v >= US_FROM else v * 1000 for v in (data["T"], data["E"]))
    return (data["s"], data["t"], data["p"], data["q"], *times, data["m"])


# Kafka values of the trades topic (another producer's rows) ----------------------------------

TRADE_FIELDS = (
    "symbol", "trade_id", "price", "qty", "trade_time", "event_time", "is_buyer_maker",
    "ingest_time", "time_unit",
)  # fmt: skip


def _good_row(draw: st.DrawFn) -> dict[str, Any]:
    """A Trade JSON: this release's (``"time_unit":"us"``, µs times) or an earlier one's (no
    time_unit, ms times)."""
    data = _trade_data(draw)
    if data["T"] >= US_FROM:
        return {
            "time_unit": "us",
            "symbol": data["s"],
            "trade_id": data["t"],
            "price": data["p"],
            "qty": data["q"],
            "trade_time": data["T"],
            "event_time": data["E"],
            "is_buyer_maker": data["m"],
            "ingest_time": data["E"] + 5_123,
        }
    return {
        "symbol": data["s"],
        "trade_id": data["t"],
        "price": data["p"],
        "qty": data["q"],
        "trade_time": data["T"],
        "event_time": data["E"],
        "is_buyer_maker": data["m"],
        "ingest_time": data["E"] + 5,
    }


VALUE_MIX = {"json": 7_500, "null": 300, "garbage": 800, "binary": 800, "literal": 500, "huge": 100}
"""How many Kafka values of each shape a Spark fuzz run writes (10,000 in all)."""


@st.composite
def kafka_values(draw: st.DrawFn, shape: str) -> bytes | None:
    """A raw Kafka value: a Trade JSON with fields replaced, removed or added (``json``), a
    tombstone (``null``), random bytes, invalid UTF-8 inside the JSON, literals JSON forbids
    (NaN, Infinity, 1e400, hex, single quotes), or a 100k-character symbol or extra field."""
    row: dict[str, Any] = _good_row(draw)
    for key in draw(st.lists(st.sampled_from([*TRADE_FIELDS, "x"]), max_size=3)):
        if draw(st.integers(min_value=0, max_value=4)) == 0:
            row.pop(key, None)
        else:
            row[key] = draw(field_values)
    if shape == "null":
        return None
    if shape == "garbage":
        return draw(st.binary(max_size=80))
    text = json.dumps(row, separators=(",", ":"))
    if shape == "binary":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        return text[:at].encode() + b"\xff\xfe" + text[at:].encode()
    if shape == "huge":
        row["symbol" if draw(st.booleans()) else "x"] = "A" * HUGE
        return json.dumps(row).encode()
    if shape == "literal":  # JSON-like literals the standard forbids
        key = draw(st.sampled_from(["price", "qty", "trade_time", "trade_id"]))
        literal = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "0x10", "'1'"]))
        return text.replace(json.dumps(row.get(key, 0)), literal, 1).encode()
    return text.encode()


def classify_value(value: bytes | None) -> str | None:
    """None if ``value`` is a usable Trade JSON, else what is wrong with it. Like Spark's JSON
    reader, text after the first complete JSON value is ignored."""
    if value is None:
        return "null value"
    try:
        text = value.decode("utf-8")
        row, _ = _decoder().raw_decode(text.lstrip(" \t\r\n"))
    except (ValueError, UnicodeError, RecursionError):
        return "not JSON"
    if not isinstance(row, dict):
        return "not an object"
    symbol = row.get("symbol")
    if not isinstance(symbol, str) or not re.fullmatch(r"[A-Za-z0-9]{1,32}", symbol):
        return "bad symbol"
    if not _int_in(row.get("trade_id"), 0, INT_LIMIT - 1):
        return "bad trade_id"
    if "time_unit" in row and row["time_unit"] != "us":
        return "bad time_unit"
    largest = MAX_MICROS if "time_unit" in row else MAX_MILLIS
    if not all(_int_in(row.get(k), 0, largest) for k in ("trade_time", "event_time")):
        return "bad time"
    if not _int_in(row.get("ingest_time"), 0, largest):
        return "bad time"
    if decimal_problem(row.get("price")) or decimal_problem(row.get("qty")):
        return "bad price or qty"
    if Decimal(row["price"]) * Decimal(row["qty"]) > MAX_QUOTE:
        return "price x qty too large"
    if not isinstance(row.get("is_buyer_maker"), bool):
        return "bad flag"
    scale = 1 if "time_unit" in row else 1000
    if row["trade_time"] * scale > row["ingest_time"] * scale + AHEAD_US:
        return "trade time ahead of ingest time"
    return None


_SEED: int | None = None


def fuzz_seed() -> int:
    """``FUZZ_SEED`` if set (replaying a run), else one random seed for this process."""
    global _SEED
    if _SEED is None:
        given_seed = os.environ.get("FUZZ_SEED", "").strip()
        _SEED = int(given_seed) if given_seed else random.SystemRandom().randrange(2**32)
    return _SEED


def seeded(node: str) -> int:
    """This run's seed for the fuzz test ``node``: printed (pytest shows it when the test
    fails) and put in the test's row, failed or not."""
    from tests.reliability.results import setting

    seed = fuzz_seed()
    print(f"FUZZ_SEED={seed} (replay: FUZZ_SEED={seed} .venv/bin/python -m pytest '{node}')")
    setting(seed=seed)
    return seed


def generate_mix(
    strategy: Callable[[str], st.SearchStrategy[T]], mix: dict[str, int], seed: int
) -> list[T]:
    """``mix[kind]`` examples of ``strategy(kind)`` for each kind, each from its own run."""
    drawn: list[T] = []
    for i, (kind, count) in enumerate(mix.items()):
        drawn += generate(strategy(kind), count, seed + i)
    return drawn


def generate(strategy: st.SearchStrategy[T], count: int, seed: int) -> list[T]:
    """``count`` examples of ``strategy`` from one hypothesis run started from ``seed`` (no
    shrinking, no example database): the same seed gives the same list when the test runs
    alone. (hypothesis keeps some state per process, e.g. constants it saw in loaded modules,
    so in a full session other tests can shift the exact cases a little; the tests assert
    measured counts, never fixed ones.)"""
    drawn: list[T] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        deadline=None,
        derandomize=False,  # the seed decides (also under the "ci" profile)
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: T) -> None:
        drawn.append(example)

    collect()
    return drawn


def split(items: list[T], classify: Callable[[T], str | None]) -> tuple[list[T], list[T]]:
    """(good, bad) by ``classify``."""
    good = [item for item in items if classify(item) is None]
    bad = [item for item in items if classify(item) is not None]
    return good, bad
