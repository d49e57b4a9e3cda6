"""Topic names and creation."""

from __future__ import annotations

import contextlib
import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from cryptolab.bus.security import explain_kafka_failure, kafka_python_options
from cryptolab.settings import Settings

log = logging.getLogger(__name__)

BOOTSTRAP_TIMEOUT_MS = 15_000
"""How long the first connection may take before "cannot reach" / "refused credentials"."""


def ensure_topics(settings: Settings, bootstrap: str) -> None:
    """Create the trades topic and its dead-letter topic if they do not exist."""
    wanted = {settings.topic: settings.topic_partitions, settings.dlq_topic: 1}
    with explain_kafka_failure(settings, bootstrap, "creating topics"):
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=15_000,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            **kafka_python_options(settings),
        )
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=parts, replication_factor=1)
            for name, parts in wanted.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
            log.info("created topics %s", ",".join(t.name for t in missing))
    finally:
        admin.close()


def end_offsets(bootstrap: str, topic: str, settings: Settings | None = None) -> dict[int, int]:
    """Next offset of every partition of ``topic`` (what a caught-up consumer has read).

    ``settings`` carry the Kafka security options (none: a PLAINTEXT broker)."""
    from kafka import KafkaConsumer, TopicPartition

    security = kafka_python_options(settings) if settings is not None else {}
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, request_timeout_ms=30000, enable_auto_commit=False, **security
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        return {tp.partition: int(off) for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
