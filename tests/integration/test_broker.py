"""The local broker is a real Kafka: start, reuse, status, stop, clear errors."""

import socket
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from cryptolab.bus.broker import LocalBroker
from cryptolab.errors import BrokerError, JavaNotFoundError
from cryptolab.settings import load_settings


def test_broker_lifecycle_and_restart_keeps_data(tmp_path: Path) -> None:
    broker = LocalBroker(load_settings(data_dir=tmp_path))
    assert not broker.status().running
    bootstrap = broker.start()
    try:
        assert broker.status().running and broker.status().bootstrap == bootstrap
        # a second handle finds the running broker instead of starting another
        assert LocalBroker(load_settings(data_dir=tmp_path)).start() == bootstrap
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        from cryptolab.bus.topics import ensure_topics

        ensure_topics(load_settings(data_dir=tmp_path, topic="kept"), bootstrap)
        producer.send("kept", b"survives a restart").get(timeout=30)
        producer.close()
    finally:
        assert broker.stop()
    assert not broker.status().running
    assert not broker.stop(), "stopping a stopped broker says so"
    bootstrap = broker.start()  # same data dir, same port if still free
    try:
        consumer = KafkaConsumer(
            "kept",
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=10_000,
        )
        assert [m.value for m in consumer] == [b"survives a restart"]
        consumer.close()
    finally:
        broker.stop()


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        broker = LocalBroker(load_settings(data_dir=tmp_path, kafka_port=port))
        with pytest.raises(BrokerError, match=f"port {port}"):
            broker.start()


def test_missing_java_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(JavaNotFoundError, match="install a JDK or set JAVA_HOME"):
        LocalBroker(load_settings(data_dir=tmp_path)).start()
