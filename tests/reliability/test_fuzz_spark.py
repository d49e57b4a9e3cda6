"""Bad input, fuzzed, on the Spark parser: 10,000 generated Kafka values that our producer would
never write but another producer on the shared topic could, through the real streaming job into
chDB in one run.

The values come from derandomized hypothesis runs, one per shape
(``frames.generate_mix(kafka_values, VALUE_MIX)``: fixed seed, no shrinking, drawn in bulk):
Trade JSON with fields of the wrong type, missing or replaced by anything (NaN/Infinity,
1e400, negative or zero numbers, huge ints), tombstones (null values), random bytes, invalid
UTF-8 inside the JSON, literals JSON forbids, and 100k-character symbols or fields; keys are
null, a symbol or random bytes. Good rows get unique trade ids so every one of them must be
stored. The independent classification (``frames.classify_value``, stdlib json + Decimal) says
which rows are good; candles of the good rows must equal ``tests/reference.py``.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pandas as pd
from kafka import KafkaProducer

from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.cli.render import render_candles
from cryptolab.store import open_store, queries
from cryptolab.streaming.job import StreamingJob
from tests.reference import assert_candles_equal, parse_candles_csv, reference_candles
from tests.reliability.frames import (
    BASE_MS,
    VALUE_MIX,
    classify_value,
    generate_mix,
    kafka_values,
)
from tests.reliability.results import record

Position = tuple[int, int]  # (partition, offset)


def unique_id(value: bytes | None, index: int) -> bytes | None:
    """A good row with its trade id replaced by a unique one (so none is a duplicate)."""
    if classify_value(value) is not None or value is None:
        return value
    row, _ = json.JSONDecoder().raw_decode(value.decode().lstrip(" \t\r\n"))
    row["trade_id"] = 10**9 + index
    return json.dumps(row).encode()


def write(bootstrap: str, topic: str, values: list[bytes | None]) -> dict[Position, bytes | None]:
    """Write ``values`` raw, keys null (a key for a null value) / a symbol / bytes; where each
    one landed."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    keys = [None, b"BTCUSDT", b"\xff\x00key"]
    futures = [
        (producer.send(topic, key=keys[i % 3] if v is not None else b"tombstone", value=v), v)
        for i, v in enumerate(values)
    ]
    producer.flush(timeout=120)
    producer.close()
    landed = {}
    for future, value in futures:
        meta = future.get(timeout=10)
        landed[(meta.partition, meta.offset)] = value
    return landed


def wait_caught_up(job: StreamingJob, bootstrap: str, topic: str, timeout: float = 240) -> None:
    target = end_offsets(bootstrap, topic)
    deadline = time.monotonic() + timeout
    while not job.caught_up(target):
        assert time.monotonic() < deadline, f"not caught up: {job.processed()} vs {target}"
        time.sleep(0.5)


def later_good_rows(count: int) -> list[bytes | None]:
    """Good rows an hour after the fuzzed ones: the query still takes new data afterwards."""
    start = BASE_MS + 3_600_000
    return [
        json.dumps(
            {
                "symbol": "BTCUSDT",
                "trade_id": 2 * 10**9 + i,
                "price": f"{97_000 + i}.5",
                "qty": "0.001",
                "trade_time": start + i * 100,
                "event_time": start + i * 100 + 3,
                "is_buyer_maker": i % 2 == 0,
                "ingest_time": start + i * 100 + 9,
            }
        ).encode()
        for i in range(count)
    ]


def expected_trades(values: list[bytes | None]) -> pd.DataFrame:
    rows = []
    for value in values:
        assert value is not None
        row, _ = json.JSONDecoder().raw_decode(value.decode().lstrip(" \t\r\n"))
        scale = 1 if "time_unit" in row else 1000  # µs; a value without time_unit is in ms
        rows.append(
            (
                row["symbol"],
                row["trade_id"],
                Decimal(row["price"]),
                Decimal(row["qty"]),
                row["trade_time"] * scale,
                row["event_time"] * scale,
                row["is_buyer_maker"],
            )
        )
    columns = ["symbol", "trade_id", "price", "qty", "trade_time", "event_time", "m"]
    return pd.DataFrame(rows, columns=columns)


def stored_trades(store: Any) -> set[tuple[Any, ...]]:
    rows = store.query_rows(
        "SELECT symbol, trade_id, price, qty, toUnixTimestamp64Micro(trade_time), "
        f"toUnixTimestamp64Micro(event_time), is_buyer_maker FROM {store.table('trades')} FINAL"
    )
    return {
        (str(s), int(t), Decimal(p), Decimal(q), int(a), int(b), bool(m))
        for s, t, p, q, a, b, m in rows
    }


def test_fuzzed_kafka_values_are_stored_or_quarantined_with_a_reason(
    spark: Any, kafka_bootstrap: str, make_settings: Any
) -> None:
    settings = make_settings(trigger_seconds=0.5)
    ensure_topics(settings, kafka_bootstrap)
    values = [unique_id(v, i) for i, v in enumerate(generate_mix(kafka_values, VALUE_MIX))]
    landed = write(kafka_bootstrap, settings.topic, values)
    bad_at = {pos for pos, v in landed.items() if classify_value(v) is not None}
    good = [v for v in values if classify_value(v) is None]
    assert len(values) >= 10_000 and len(good) > 1_000 and len(bad_at) > 1_000

    store = open_store(settings)
    started = time.monotonic()
    job = StreamingJob(spark, settings, kafka_bootstrap, store).start()
    try:
        wait_caught_up(job, kafka_bootstrap, settings.topic)
        later = later_good_rows(50)
        write(kafka_bootstrap, settings.topic, later)
        wait_caught_up(job, kafka_bootstrap, settings.topic)
        running = all(q.isActive for q in job.queries.values())
    finally:
        job.stop()
    seconds = time.monotonic() - started

    quarantined = store.query_rows(
        f"SELECT partition, offset, reason FROM {store.table('quarantine')} FINAL"
    )
    with_reason = {(int(p), int(o)) for p, o, reason in quarantined if reason}
    expected = expected_trades(good + later)
    stored = stored_trades(store)
    counters_match = (
        len(quarantined) == len(bad_at)
        and len(stored) == len(expected)
        and len(quarantined) + len(stored) == len(values) + len(later)
    )
    record(
        "fuzz",
        "Kafka values -> Spark parser -> chDB",
        cases=len(values),
        bad_cases=len(bad_at),
        in_dlq_or_quarantine=len(with_reason),
        trades_stored=len(stored),
        counters_match=counters_match,
        crashes=0 if running else 1,
        seconds=round(seconds, 1),
    )
    assert running
    assert with_reason == bad_at
    assert stored == {tuple(r) for r in expected.itertuples(index=False)}
    assert counters_match
    actual: dict[Any, Any] = {}
    for symbol in sorted(set(expected["symbol"])):
        actual.update(parse_candles_csv(render_candles(queries.candles(store, symbol), "csv")))
    assert_candles_equal(actual, reference_candles(expected))
