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


class _ClusterDefaultTwo(LocalBroker):
    """A one-broker cluster whose default.replication.factor is 2 (as a 3-broker production
    cluster might say): a topic made with the cluster's default cannot be created here."""

    def _write_properties(self, broker: int, controller: int) -> Path:
        path = super()._write_properties(broker, controller)
        path.write_text(path.read_text() + "default.replication.factor=2\n")
        return path


def test_topics_take_the_clusters_replication_factor_or_the_setting(tmp_path: Path) -> None:
    from kafka import KafkaAdminClient

    from cryptolab.bus.topics import ensure_topics

    broker = _ClusterDefaultTwo(load_settings(data_dir=tmp_path / "b"))
    bootstrap = broker.start()
    try:
        default = load_settings(data_dir=tmp_path, topic="t_default", dlq_topic="d_default")
        with pytest.raises(BrokerError, match=r"refused to create the topics t_default.*"
                           r"CRYPTOLAB_TOPIC_REPLICATION_FACTOR"):  # fmt: skip
            ensure_topics(default, bootstrap)  # asked for the cluster's 2, not a hard-coded 1
        one = load_settings(
            data_dir=tmp_path, topic="t_one", dlq_topic="d_one", topic_replication_factor=1
        )
        ensure_topics(one, bootstrap)
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            topics = set(admin.list_topics())
            described = admin.describe_topics(["t_one"])
        finally:
            admin.close()
        assert {"t_one", "d_one"} <= topics and not {"t_default", "d_default"} & topics
        assert [len(p["replica_nodes"]) for p in described[0]["partitions"]] == [1, 1, 1]
    finally:
        broker.stop()
