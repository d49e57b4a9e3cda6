"""Producer -> real Kafka: trades keyed by symbol, bad frames in the DLQ with their reason."""

from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer

from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.model import Trade, parse_frame


def consume_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5_000
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def test_trades_and_dlq(kafka_bootstrap: str, make_settings: Any) -> None:
    settings = make_settings()
    ensure_topics(settings, kafka_bootstrap)
    good = list(synth_frames(["BTCUSDT", "ETHUSDT"], 20, 20, seed=5))
    bad = ['{"stream":"btcusdt@trade","data":{"e":"trade","p":"1"}}', "}{", '{"e":"kline"}']
    producer = TradeProducer(settings, kafka_bootstrap)
    producer.publish_all([*good[:10], *bad, *good[10:]])
    producer.flush()
    producer.close()
    assert (producer.stats.trades, producer.stats.dlq) == (len(good), 3)

    messages = consume_all(kafka_bootstrap, settings.topic)
    assert sum(end_offsets(kafka_bootstrap, settings.topic).values()) == len(good)
    trades = [Trade.from_json(m.value) for m in messages]
    expected = {(t.symbol, t.trade_id, t.price, t.qty) for t in map(parse_frame, good)}
    assert {(t.symbol, t.trade_id, t.price, t.qty) for t in trades} == expected
    assert all(m.key.decode() == Trade.from_json(m.value).symbol for m in messages)
    # one symbol, one partition: per-symbol order is kept
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert len({m.partition for m in messages if m.key == symbol.encode()}) == 1
    # ... and the partition Kafka's default partitioner picks for the key, like any producer
    other = make_settings()
    ensure_topics(other, kafka_bootstrap)
    plain = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    picked = {
        symbol: plain.send(other.topic, key=symbol.encode(), value=b"x").get(30).partition
        for symbol in ("BTCUSDT", "ETHUSDT")
    }
    plain.close()
    assert {m.key.decode(): m.partition for m in messages} == picked

    dlq = [orjson.loads(m.value) for m in consume_all(kafka_bootstrap, settings.dlq_topic)]
    assert [d["raw"] for d in dlq] == bad
    assert "symbol ('s') must be 1-32 ASCII letters and digits" in dlq[0]["reason"]
    assert "invalid JSON" in dlq[1]["reason"]
    assert "unknown event type 'kline'" in dlq[2]["reason"]
