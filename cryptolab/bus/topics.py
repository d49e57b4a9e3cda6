"""Topic names and creation."""

from __future__ import annotations

import contextlib
import logging

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from cryptolab.bus.security import explain_kafka_failure, kafka_python_options
from cryptolab.errors import BrokerError
from cryptolab.settings import Settings

log = logging.getLogger(__name__)

BOOTSTRAP_TIMEOUT_MS = 15_000
"""How long the first connection may take before "cannot reach" / "refused credentials"."""


def ensure_topics(settings: Settings, bootstrap: str) -> None:
    """Create the trades topic and its dead-letter topic if they do not exist, with
    ``CRYPTOLAB_TOPIC_REPLICATION_FACTOR`` replicas, else the cluster's own default (-1 asks
    the broker for ``default.replication.factor``, Kafka 2.4+)."""
    wanted = {settings.topic: settings.topic_partitions, settings.dlq_topic: 1}
    replicas = settings.topic_replication_factor or -1
    with explain_kafka_failure(settings, bootstrap, "creating topics"):
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=15_000,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            **kafka_python_options(settings),
        )
    try:
        existing = set(admin.list_topics())
        missing = {
            name: {"num_partitions": parts, "replication_factor": replicas}
            for name, parts in wanted.items()
            if name not in existing
        }
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                _create(admin, missing, bootstrap)
            log.info("created topics %s replication_factor=%s", ",".join(missing), replicas)
    finally:
        admin.close()


def _create(admin: KafkaAdminClient, topics: dict[str, dict[str, int]], bootstrap: str) -> None:
    try:
        admin.create_topics(topics)
    except TopicAlreadyExistsError:
        raise
    except KafkaError as exc:
        shape = ", ".join(f"{n} ({t['num_partitions']} partitions)" for n, t in topics.items())
        raise BrokerError(
            f"Kafka at {bootstrap} refused to create the topics {shape}: {exc}. Set "
            "CRYPTOLAB_TOPIC_REPLICATION_FACTOR to at most the number of brokers (unset = the "
            "cluster's default.replication.factor), or have an administrator create them"
        ) from exc


def end_offsets(bootstrap: str, topic: str, settings: Settings | None = None) -> dict[int, int]:
    """Next offset of every partition of ``topic`` (what a caught-up consumer has read).

    ``settings`` carry the Kafka security options (none: a PLAINTEXT broker)."""
    from kafka import KafkaConsumer, TopicPartition

    security = kafka_python_options(settings) if settings is not None else {}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=30000, **security)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        return {tp.partition: int(off) for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
