"""One stage per process: the feed alone, or the streaming job alone.

``cryptolab up`` runs every stage in one process (the embedded default). When the stages run
on separate machines or containers (docker-compose, a Spark cluster, a ClickHouse server) each
process runs one of these instead, and they meet only in Kafka and the store:

* :func:`run_producer`  source -> Kafka (trades topic + DLQ);
* :func:`run_streaming` Kafka -> Spark (``settings.spark_master``) -> store.

Neither starts a Kafka broker: they use ``CRYPTOLAB_KAFKA_BOOTSTRAP`` or a local broker that is
already running (``cryptolab kafka start``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from cryptolab.bus.broker import LocalBroker
from cryptolab.bus.producer import ProducerStats, TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.errors import BrokerError
from cryptolab.feeds.source import Source
from cryptolab.settings import Settings
from cryptolab.store import open_store

log = logging.getLogger(__name__)

REPORT_EVERY_S = 10.0


def kafka_bootstrap(settings: Settings) -> str:
    """The Kafka to use: ``CRYPTOLAB_KAFKA_BOOTSTRAP``, else a local broker already running."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    status = LocalBroker(settings).status()
    if status.running and status.bootstrap:
        return status.bootstrap
    raise BrokerError(
        "no Kafka to talk to: set CRYPTOLAB_KAFKA_BOOTSTRAP=host:port, or start the local "
        "broker first with `cryptolab kafka start` (same --data-dir)"
    )


def run_producer(
    settings: Settings, source: Source, stop: threading.Event | None = None
) -> ProducerStats:
    """Publish every frame of ``source`` to Kafka until it ends or ``stop`` is set."""
    stop = stop or threading.Event()
    bootstrap = kafka_bootstrap(settings)
    ensure_topics(settings, bootstrap)
    producer = TradeProducer(settings, bootstrap)
    log.info("producer started source=%s bootstrap=%s", source.description, bootstrap)
    try:
        producer.publish_all(source.frames(stop), stop)
        producer.flush()
    finally:
        producer.close()
    stats = producer.stats
    log.info("producer done frames=%d trades=%d dlq=%d", stats.frames, stats.trades, stats.dlq)
    return stats


def run_streaming(
    settings: Settings,
    stop: threading.Event | None = None,
    until_caught_up: bool = False,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Run the streaming job until ``stop`` is set (or Ctrl-C), returning its last progress.

    ``until_caught_up``: exit once everything in the topic when the job started is in the store
    (a backlog run; fails after ``timeout`` seconds).
    """
    from cryptolab.streaming.job import StreamingJob
    from cryptolab.streaming.session import create_spark

    stop = stop or threading.Event()
    bootstrap = kafka_bootstrap(settings)
    ensure_topics(settings, bootstrap)
    target = end_offsets(bootstrap, settings.topic, settings) if until_caught_up else None
    store = open_store(settings)
    spark: Any = None
    job: StreamingJob | None = None
    try:
        spark = create_spark(settings, app_name="cryptolab-stream")
        job = StreamingJob(spark, settings, bootstrap, store).start()
        _wait(job, stop, target, timeout)
        return job.progress()
    finally:
        if job is not None:
            job.stop()
        if spark is not None:
            spark.stop()
        store.close()


def _wait(job: Any, stop: threading.Event, target: dict[int, int] | None, timeout: float) -> None:
    if target is not None:
        job.wait_caught_up(target, timeout, stop)
        return
    last_report = time.monotonic()
    while not stop.is_set():
        job.raise_if_failed()
        if time.monotonic() - last_report >= REPORT_EVERY_S:
            last_report = time.monotonic()
            log.info("streaming processed=%s", job.processed())
        stop.wait(0.2)
