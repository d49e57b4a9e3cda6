"""Feed -> Kafka: parse raw frames, publish normalized trades keyed by symbol, route bad frames
to the dead-letter topic with the reason.

Messages are batched by the Kafka client (``linger_ms``) and acknowledged by all in-sync
replicas (``acks=all``, idempotent producer); nothing is flushed per message.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from cryptolab.bus.security import explain_kafka_failure, kafka_python_options
from cryptolab.errors import BrokerError, FrameError
from cryptolab.frames import is_backfilled
from cryptolab.model import Trade, now_ms, parse_frame, parse_frames
from cryptolab.settings import Settings

log = logging.getLogger(__name__)

MAX_DLQ_RAW_CHARS = 100_000
SOURCE_HEADER = "cryptolab-source"
BACKFILL_HEADERS = [(SOURCE_HEADER, b"rest-backfill")]
"""Kafka headers of a trade the feed recovered over REST instead of receiving it live."""
BATCH_FRAMES = 512
"""Frames parsed in one call when the frames are all there already (a list, e.g. a tape); a
live feed's iterator is published frame by frame, as each arrives."""


@dataclass
class ProducerStats:
    frames: int = 0
    trades: int = 0
    dlq: int = 0
    send_errors: int = 0
    per_symbol: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "trades": self.trades,
            "dlq": self.dlq,
            "send_errors": self.send_errors,
            "per_symbol": dict(self.per_symbol),
        }


def dlq_record(frame: str | bytes, reason: str) -> bytes:
    """``{"raw": <frame text>, "reason": ..., "ingest_time": ...}``; a frame that is not valid
    UTF-8 (a binary WebSocket message, a lone surrogate) also keeps its exact bytes as
    ``raw_base64``, since ``raw`` can only show them with replacement characters."""
    record: dict[str, Any] = {"raw": "", "reason": reason, "ingest_time": now_ms()}
    data = frame if isinstance(frame, bytes) else frame.encode("utf-8", errors="surrogatepass")
    try:
        record["raw"] = data.decode("utf-8")[:MAX_DLQ_RAW_CHARS]
    except UnicodeDecodeError:
        record["raw"] = data.decode("utf-8", errors="replace")[:MAX_DLQ_RAW_CHARS]
        record["raw_base64"] = base64.b64encode(data[:MAX_DLQ_RAW_CHARS]).decode()
    return orjson.dumps(record)


class TradeProducer:
    """Publishes frames to Kafka. The Kafka client is created on first use."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.stats = ProducerStats()
        self._client: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._last_error: BaseException | None = None
        self._partitions: dict[str, int] = {}
        self._partitions_of: tuple[int, ...] = ()
        self._partitions_checked = 0.0

    @property
    def client(self) -> KafkaProducer:
        if self._client is None:
            with explain_kafka_failure(self.settings, self.bootstrap, "producer"):
                self._client = KafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=20,
                    batch_size=256 * 1024,
                    retries=2**31 - 1,
                    request_timeout_ms=30_000,
                    max_block_ms=60_000,
                    **kafka_python_options(self.settings),
                )
        return self._client

    def _on_error(self, exc: BaseException) -> None:
        with self._lock:
            self.stats.send_errors += 1
            self._last_error = exc
        log.error("kafka send failed error=%r", exc)

    def _partition(self, symbol: str) -> int | None:
        """The partition Kafka's default partitioner gives ``symbol``'s key (murmur2 of the key
        modulo the topic's partitions), remembered per symbol: kafka-python hashes every key in
        pure Python otherwise (~14 % of a send, reports/profiles/producer_send.txt). None while the
        topic's partitions are unknown (the client's partitioner then decides, as before)."""
        now = time.monotonic()
        if not self._partitions_of or now - self._partitions_checked >= 1.0:  # follow changes
            self._partitions_checked = now
            metadata = getattr(self.client, "_metadata", None)
            known = metadata.partitions_for_topic(self.settings.topic) if metadata else None
            partitions = tuple(sorted(known or ()))
            if partitions != self._partitions_of:
                self._partitions_of, self._partitions = partitions, {}
        if not self._partitions_of:
            return None
        partition = self._partitions.get(symbol)
        if partition is None:
            index = (murmur2(symbol.encode()) & 0x7FFFFFFF) % len(self._partitions_of)
            partition = self._partitions[symbol] = self._partitions_of[index]
        return partition

    def publish_trade(self, trade: Trade, backfilled: bool = False) -> None:
        future = self.client.send(
            self.settings.topic,
            key=trade.symbol.encode(),
            value=trade.to_json(),
            headers=BACKFILL_HEADERS if backfilled else None,
            partition=self._partition(trade.symbol),
        )
        future.add_errback(self._on_error)
        self.stats.trades += 1
        self.stats.per_symbol[trade.symbol] = self.stats.per_symbol.get(trade.symbol, 0) + 1

    def publish_dlq(self, frame: str | bytes, reason: str) -> None:
        future = self.client.send(self.settings.dlq_topic, value=dlq_record(frame, reason))
        future.add_errback(self._on_error)
        self.stats.dlq += 1
        log.debug("frame to dlq reason=%s", reason)

    def publish(self, frame: str | bytes) -> Trade | None:
        """Parse one raw frame and send it to the trades topic or, if bad, to the DLQ."""
        self.stats.frames += 1
        try:
            trade = parse_frame(frame)
        except FrameError as exc:
            self.publish_dlq(frame, exc.reason)
            return None
        self.publish_trade(trade, backfilled=is_backfilled(frame))
        return trade

    def publish_batch(self, frames: Sequence[str | bytes]) -> None:
        """:meth:`publish` of each frame, with one parse of the whole batch (parse_frames) and
        the per-message work of :meth:`publish_trade` kept to the send itself."""
        send, topic, on_error = self.client.send, self.settings.topic, self._on_error
        sent: dict[str, int] = {}
        done = 0
        try:
            for frame, result in zip(frames, parse_frames(frames), strict=True):
                done += 1
                if isinstance(result, FrameError):
                    self.publish_dlq(frame, result.reason)
                    continue
                symbol = result.symbol
                send(
                    topic,
                    key=symbol.encode(),
                    value=result.to_json(),
                    headers=BACKFILL_HEADERS if is_backfilled(frame) else None,
                    partition=self._partition(symbol),
                ).add_errback(on_error)
                sent[symbol] = sent.get(symbol, 0) + 1
        finally:
            self.stats.frames += done
            self.stats.trades += sum(sent.values())
            for symbol, count in sent.items():
                self.stats.per_symbol[symbol] = self.stats.per_symbol.get(symbol, 0) + count

    def publish_all(
        self, frames: Iterable[str | bytes], stop: threading.Event | None = None
    ) -> None:
        if isinstance(frames, Sequence):
            for start in range(0, len(frames), BATCH_FRAMES):
                if stop is not None and stop.is_set():
                    break
                self.publish_batch(frames[start : start + BATCH_FRAMES])
            return
        for frame in frames:
            if stop is not None and stop.is_set():
                break
            self.publish(frame)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every message is acknowledged; raise if any send failed."""
        if self._client is None:
            return
        self._client.flush(timeout=timeout)
        if self._last_error is not None:
            raise BrokerError(
                f"{self.stats.send_errors} message(s) could not be sent to Kafka at "
                f"{self.bootstrap}: {self._last_error!r}"
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close(timeout=30)
            self._client = None
