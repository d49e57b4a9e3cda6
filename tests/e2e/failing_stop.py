"""Run in its own process by ``test_failing_stop``: the embedded stack, then the streaming stage,
each with parts whose ``stop`` raises (subclasses injected here, not hooks in the product).
Prints what was left running, as JSON, on the last line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import cryptolab.stack
import cryptolab.streaming.job
from cryptolab.bus.broker import LocalBroker
from cryptolab.feeds.source import replay_source
from cryptolab.pids import pid_alive
from cryptolab.settings import load_settings
from cryptolab.stages import run_streaming
from cryptolab.streaming.job import StreamingJob


class Boom(RuntimeError):
    pass


class FailingJob(StreamingJob):
    def stop(self, *args: Any, **kwargs: Any) -> None:
        raise Boom("the streaming job failed to stop")


class FailingDashboard:
    def __init__(self, real: Any) -> None:
        self.real = real
        self.url = real.url

    def stop(self) -> None:
        self.real.stop()
        raise Boom("the dashboard failed to stop")


def spark_usable(spark: Any) -> bool:
    try:
        return bool(spark.range(1).count() == 1)
    except Exception:
        return False


def main(tape: Path) -> dict[str, Any]:
    settings = load_settings()
    cryptolab.stack.StreamingJob = FailingJob  # type: ignore[misc]
    stack = cryptolab.stack.Stack(settings, replay_source(tape, None)).start(dash=True)
    stack.dashboard = FailingDashboard(stack.dashboard)
    stack.run(until_drained=True)
    assert stack.broker is not None
    broker_pid = stack.broker.status().pid
    result: dict[str, Any] = {"broker_pid": broker_pid}
    try:
        stack.stop()
    except Boom as exc:
        result["stack_error"] = str(exc)
    result["stack_broker_alive"] = broker_pid is not None and pid_alive(broker_pid)
    result["stack_spark_usable"] = spark_usable(stack.spark)

    # the streaming stage alone, on a broker of its own
    cryptolab.streaming.job.StreamingJob = FailingJob  # type: ignore[misc]
    broker = LocalBroker(settings)
    broker.start()
    try:
        # an empty topic of its own: caught up at once, then the stop
        run_streaming(load_settings(topic="stage_only"), until_caught_up=True)
    except Boom as exc:
        result["stage_error"] = str(exc)
    finally:
        broker.stop()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    result["stage_spark_usable"] = active is not None and spark_usable(active)
    return result


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))), flush=True)
