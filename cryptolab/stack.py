"""The whole embedded pipeline in one process: used by `cryptolab up` and by notebooks.

    source -> TradeProducer -> Kafka -> Spark (StreamingJob) -> Store <- dashboard

chDB allows one engine per process, so this process owns the store, hosts the Spark driver
(whose foreachBatch writes to it) and serves the dashboard.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptolab.bus.broker import LocalBroker
from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.closing import stop_all
from cryptolab.errors import CryptolabError
from cryptolab.feeds.source import Source
from cryptolab.model import WINDOW_SECONDS
from cryptolab.settings import Settings, require_writable_dir
from cryptolab.store import Store, open_store, queries
from cryptolab.store.reconcile import ReconcileReport, closed_horizon, reconcile, touched_since
from cryptolab.store.share import StoreShare, require_share_guarded
from cryptolab.streaming.job import StreamingJob

log = logging.getLogger(__name__)

REPORT_EVERY_S = 5.0


@dataclass
class StackStatus:
    """What the dashboard and the logs show about the running pipeline."""

    source_kind: str = ""
    source_description: str = ""
    bootstrap: str = ""
    started_at: float = field(default_factory=time.time)
    feed_done: bool = False
    drained: bool = False
    error: str | None = None
    counters: dict[str, int] = field(default_factory=dict)  # feed + producer, refreshed by run()

    @property
    def is_live(self) -> bool:
        return self.source_kind == "live"


@dataclass(frozen=True)
class RunTotals:
    """One run of the stack in numbers: trades published, distinct trades and 10 s candles the
    store received during the run, and what still waits in Kafka (None: unknown)."""

    trades_in: int
    dlq: int
    stored: int | None
    candles: int | None
    waiting: int | None
    seconds: float


class _LagProbe:
    """Kafka lag, measured on a background thread at most every ``every_s`` so that reading it
    (every second, from the dashboard) never waits for Kafka."""

    def __init__(self, measure: Callable[[], int], every_s: float = 3.0) -> None:
        self.measure = measure
        self.every_s = every_s
        self.value: int | None = None
        self._at = -every_s
        self._busy = False
        self._lock = threading.Lock()

    def get(self) -> int | None:
        with self._lock:
            if not self._busy and time.monotonic() - self._at >= self.every_s:
                self._busy = True
                threading.Thread(target=self._run, name="kafka-lag", daemon=True).start()
        return self.value

    def _run(self) -> None:
        try:
            self.value = self.measure()
        except Exception as exc:
            self.value = None
            log.warning("kafka lag unavailable error=%r", exc)
        finally:
            with self._lock:
                self._busy = False
                self._at = time.monotonic()


def spark_rates(progress: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Input rate, processing rate and batch duration of each streaming query."""
    rates: dict[str, dict[str, float]] = {}
    for name, data in progress.items():
        if not data:
            continue
        rates[name] = {
            "input_rps": float(data.get("inputRowsPerSecond") or 0.0),
            "processed_rps": float(data.get("processedRowsPerSecond") or 0.0),
            "batch_ms": float((data.get("durationMs") or {}).get("triggerExecution") or 0.0),
        }
    return rates


class Stack:
    """Start, run and stop the embedded pipeline. Use as a context manager."""

    def __init__(self, settings: Settings, source: Source) -> None:
        self.settings = settings
        self.source = source
        self.status = StackStatus(source.kind, source.description)
        self.broker: LocalBroker | None = None
        self.store: Store | None = None
        self.spark: Any = None
        self.job: StreamingJob | None = None
        self.producer: TradeProducer | None = None
        self.dashboard: Any = None
        self.share: StoreShare | None = None
        self._stop_feed = threading.Event()
        self._feed_thread: threading.Thread | None = None
        self._feed_error: BaseException | None = None
        self._started = time.monotonic()
        self._started_at = datetime.now(UTC)
        self._last_reconcile = time.monotonic()
        self.first_candle_after: float | None = None
        self.reconcile_reports: list[ReconcileReport] = []
        self._lag = _LagProbe(self.kafka_lag)
        self._interrupted = threading.Event()
        self._hurry = threading.Event()

    # -- start ---------------------------------------------------------------------------------
    def start(self, dash: bool = True) -> Stack:
        settings = self.settings
        if dash:  # refuse an unguarded public dashboard before starting anything
            from cryptolab.dashboard.auth import require_safe_binding

            require_safe_binding(settings)
        require_share_guarded(settings)
        require_writable_dir(settings.data_dir, "CRYPTOLAB_DATA_DIR")
        self._started = time.monotonic()
        self._started_at = datetime.now(UTC) - timedelta(seconds=1)
        if settings.kafka_bootstrap:
            bootstrap = settings.kafka_bootstrap
            log.info("using external kafka bootstrap=%s", bootstrap)
        else:
            self.broker = LocalBroker(settings)
            bootstrap = self.broker.start()
        self.status.bootstrap = bootstrap
        ensure_topics(settings, bootstrap)
        self.store = open_store(settings)
        self.share = StoreShare.start(settings)  # other processes read the live store here
        if self.source.resume is not None:  # continue where the stored history ends
            self.source.resume(queries.history_last_ids(self.store, settings.symbols))
        from cryptolab.streaming.session import create_spark

        self.spark = create_spark(settings)
        self.job = StreamingJob(self.spark, settings, bootstrap, self.store).start()
        self.producer = TradeProducer(settings, bootstrap)
        if dash:
            from cryptolab.dashboard.server import DashServer

            self.dashboard = DashServer.start(self.store, settings, self.snapshot)
            if self.share is not None:
                self.share.announce(dashboard=self.dashboard.url)
        self._feed_thread = threading.Thread(target=self._run_feed, name="feed", daemon=True)
        self._feed_thread.start()
        log.info("pipeline started source=%s", self.source.description)
        return self

    def _run_feed(self) -> None:
        assert self.producer is not None
        # a live feed finishes its backfills after stop is set: let it end by itself
        stop = None if self.source.stops_itself else self._stop_feed
        try:
            frames = self.source.frames(self._stop_feed)
            self.producer.publish_all(frames, stop, bulk=not self.source.paced)
            self.producer.flush()
        except BaseException as exc:  # surfaced by run()/drain(), never swallowed
            self._feed_error = exc
            self.status.error = f"feed failed: {exc}"
            log.error("feed failed error=%r", exc)
        finally:
            self.status.feed_done = True

    # -- state -------------------------------------------------------------------------------
    def kafka_lag(self) -> int:
        """Messages published to the trades topic that Spark has not written to the store yet."""
        assert self.job is not None
        end = end_offsets(self.status.bootstrap, self.settings.topic, self.settings)
        done = self.job.processed()
        lag = 0
        for partition, offset in end.items():
            written = min((d.get(partition, 0) for d in done.values()), default=0)
            lag += max(0, offset - written)
        return lag

    def snapshot(self) -> dict[str, Any]:
        """The pipeline state the dashboard shows (see :mod:`cryptolab.dashboard.panel`)."""
        status = self.status
        state: dict[str, Any] = {
            "live": status.is_live,
            "description": status.source_description,
            "feed_done": status.feed_done,
        }
        if status.error:
            state["error"] = status.error
        if self.producer is not None:
            counters = self.producer.stats.as_dict()
            counters.pop("per_symbol", None)
            state["producer"] = counters
        feed = dict(self.source.counters()) if self.source.counters else {}
        if self.job is not None:
            state["spark"] = spark_rates(self.job.progress())
            state["kafka_lag"] = self._lag.get()
            if self.job.metrics is not None:
                feed["late_trades"] = self.job.metrics.dropped_late
            if self.job.sink is not None:
                feed["quarantined"] = self.job.sink.quarantined
        if self.reconcile_reports:
            feed["reconciled_windows"] = sum(len(r.changed) for r in self.reconcile_reports)
        if feed:
            state["feed"] = feed
        return state

    # -- run -----------------------------------------------------------------------------------
    def _check(self) -> None:
        if self._feed_error is not None:
            raise CryptolabError(f"feed failed: {self._feed_error}") from self._feed_error
        if self.job is not None:
            self.job.raise_if_failed()

    def interrupt(self) -> None:
        """Ctrl-C: :meth:`run` ends between micro-batches after writing what Kafka holds; a
        second call cuts that wait short (what is left stays in Kafka for the next start)."""
        if self._interrupted.is_set():
            self._hurry.set()
        self._interrupted.set()

    def run(self, seconds: float | None = None, until_drained: bool = False) -> None:
        """Block until ``seconds`` pass, the finite source is drained, or :meth:`interrupt`."""
        deadline = None if seconds is None else time.monotonic() + seconds
        last_report = time.monotonic()
        while not self._interrupted.is_set():
            self._check()
            if deadline is not None and time.monotonic() >= deadline:
                break
            if until_drained and self.status.feed_done:
                break
            if time.monotonic() - last_report >= REPORT_EVERY_S:
                last_report = time.monotonic()
                self._report()
            else:
                self.counters()
            if self.first_candle_after is None:
                self._watch_first_candle()
            self._maybe_reconcile()
            self._interrupted.wait(0.2)
        if until_drained or seconds is not None or self._interrupted.is_set():
            self.drain(stop=self._hurry)

    def _maybe_reconcile(self) -> None:
        """Every ``reconcile_every_seconds``, correct closed windows from the raw trades."""
        every = self.settings.reconcile_every_seconds
        if not every or time.monotonic() - self._last_reconcile < every or self.store is None:
            return
        self._last_reconcile = time.monotonic()
        # a window is closed once Spark's watermark has passed its end; keep a safety margin
        margin = (
            2 * (self.settings.watermark_seconds + WINDOW_SECONDS) + self.settings.trigger_seconds
        )
        horizon = closed_horizon(self.store, margin)
        if horizon is not None:
            start = horizon - timedelta(seconds=self.settings.reconcile_lookback_seconds)
            try:
                self._record(reconcile(self.store, start, horizon))
            except Exception as exc:  # the store is down or full: the next round retries
                log.warning("reconcile skipped this round error=%s", str(exc).splitlines()[0])

    def _record(self, report: ReconcileReport) -> None:
        self.reconcile_reports.append(report)
        del self.reconcile_reports[:-20]
        if report.changed:
            log.warning("reconcile corrected late trades: %s", report.describe())

    def final_reconcile(self) -> ReconcileReport | None:
        """After a drain: re-derive every window this run touched, so candles are final."""
        assert self.store is not None
        start = touched_since(self.store, self._started_at)
        if start is None:
            return None
        report = reconcile(self.store, start)
        self._record(report)
        return report

    def _watch_first_candle(self) -> None:
        assert self.store is not None
        if queries.candle_trade_counts(self.store):
            self.first_candle_after = time.monotonic() - self._started
            log.info("first candle queryable %.1f s after start", self.first_candle_after)

    def counters(self) -> dict[str, int]:
        """The feed's counters (live source) with the producer's: frames, published, dlq."""
        values = dict(self.source.counters()) if self.source.counters else {}
        if self.producer is not None:
            stats = self.producer.stats
            values.update(frames=stats.frames, published=stats.trades, dlq=stats.dlq)
        self.status.counters = values
        return values

    def _report(self) -> None:
        fields: dict[str, Any] = dict(self.counters())
        if self.job is not None and self.job.sink is not None:
            fields["stored"] = self.job.sink.stored
        if not self.status.drained:  # the probe's value is seconds old: not after a drain
            fields["kafka_lag"] = self._lag.get()
        log.info("progress %s", " ".join(f"{k}={v}" for k, v in fields.items() if v is not None))

    def drain(self, timeout: float = 300.0, stop: threading.Event | None = None) -> bool:
        """Stop the feed, then wait until Spark has written every published trade to the store
        (True), or until ``stop`` is set (False: the rest waits in Kafka for the next start)."""
        self._stop_feed.set()
        if self._feed_thread is not None:
            self._feed_thread.join(timeout=120)
        self._check()
        assert self.job is not None
        target = end_offsets(self.status.bootstrap, self.settings.topic, self.settings)
        log.info("draining: waiting for spark to reach offsets %s", target)
        if not self.job.wait_caught_up(target, timeout, stop):
            log.info("stopped before spark caught up: the rest stays in Kafka for the next start")
            return False
        if self.settings.reconcile_every_seconds:
            self.final_reconcile()
        self.status.drained = True
        self._report()
        log.info("drained: every published trade is in the store, candles final")
        return True

    def totals(self) -> RunTotals:
        """What this run did, for the closing summary (before :meth:`stop`)."""
        stats = self.producer.stats if self.producer is not None else None
        stored = candles = waiting = None
        if self.store is not None:
            try:
                stored, candles = queries.stored_since(self.store, self._started_at)
            except Exception as exc:  # the summary must not hide why the run ended
                log.warning("store totals unavailable error=%s", str(exc).splitlines()[0])
        if self.job is not None:
            try:
                waiting = self.kafka_lag()
            except Exception as exc:
                log.warning("kafka lag unavailable error=%s", str(exc).splitlines()[0])
        return RunTotals(
            trades_in=stats.trades if stats else 0,
            dlq=stats.dlq if stats else 0,
            stored=stored,
            candles=candles,
            waiting=waiting,
            seconds=time.monotonic() - self._started,
        )

    # -- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every part, each whatever the others do (a failing one is logged, the next still
        stops, the local broker last); then raise the first failure."""
        self._stop_feed.set()
        feed, broker, job = self._feed_thread, self.broker, self.job
        stop_all(
            [
                ("feed", None if feed is None else lambda: feed.join(timeout=30)),
                ("producer", None if self.producer is None else self.producer.close),
                ("streaming job", None if job is None else lambda: job.stop(hurry=self._hurry)),
                ("dashboard", self.dashboard and self.dashboard.stop),
                ("store share", None if self.share is None else self.share.stop),
                ("spark", self.spark and self.spark.stop),
                ("store", None if self.store is None else self.store.close),
                ("kafka broker", broker.stop if broker is not None and broker.owned else None),
            ],
            log,
        )
        log.info("pipeline stopped")

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
