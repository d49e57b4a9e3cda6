"""Spark cluster mode for real: a standalone master and worker from the installed pyspark.

The pipeline's driver submits to ``spark://127.0.0.1:<port>`` (client mode: the driver stays in
the cryptolab process, so the embedded store still works); the worker runs the executors with
the Kafka connector jars the driver ships through ``spark.jars``. With the reconcile off, the
store must hold every published trade once and the streamed candles must equal the independent
pandas reference (tests/reliability/pipeline.py's verify_store), and the master must show the
application ran on the worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from tests.e2e.helpers import cryptolab
from tests.reference import reference_candles, tape_trades
from tests.reliability.pipeline import pipeline_env, verify_store
from tests.spark_cluster import StandaloneCluster

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    spark = StandaloneCluster(tmp_path_factory.mktemp("spark-cluster")).start()
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cluster-tape") / "two.jsonl.gz"
    write_frames(path, synth_frames(SYMBOLS, 90, 20, seed=31, jitter_ms=2500))
    return path


def cluster_env(tmp_path: Path, cluster: StandaloneCluster, bootstrap: str) -> dict[str, str]:
    """A fresh topic pair, the reconcile off (the stream is judged, not the batch reconcile)."""
    return pipeline_env(
        tmp_path / "data",
        CRYPTOLAB_SPARK_MASTER=cluster.url,
        CRYPTOLAB_KAFKA_BOOTSTRAP=bootstrap,
        CRYPTOLAB_DLQ_TOPIC=f"dlq_{uuid.uuid4().hex[:8]}",
        SPARK_LOCAL_IP="127.0.0.1",
    )


def ran_on_the_worker(cluster: StandaloneCluster, app_name: str) -> None:
    """The master lists the finished application; its executor on the worker ran tasks."""
    apps = [a for a in cluster.state()["completedapps"] if a["name"] == app_name]
    assert len(apps) == 1, cluster.state()["completedapps"]
    assert apps[0]["cores"] == 1
    assert "Finished task" in cluster.executor_logs(apps[0]["id"]), "no task ran on the worker"


def test_up_on_a_standalone_cluster_equals_the_reference(
    tmp_path: Path, cluster: StandaloneCluster, kafka_bootstrap: str, tape: Path
) -> None:
    env = cluster_env(tmp_path, cluster, kafka_bootstrap)
    up = ["up", "--source", "replay", "--tape", str(tape), "--speed", "max", "--until-drained"]
    cryptolab([*up, "--no-dash"], env)
    verify_store(env, tape, SYMBOLS)
    ran_on_the_worker(cluster, "cryptolab")


def test_split_stages_on_a_standalone_cluster_equal_the_reference(
    tmp_path: Path, cluster: StandaloneCluster, kafka_bootstrap: str, tape: Path
) -> None:
    """What docker-compose runs: `produce` and `stream` as separate processes."""
    env = cluster_env(tmp_path, cluster, kafka_bootstrap)
    doctor = cryptolab(["doctor"], env).stdout
    assert f"ok    spark       standalone master {cluster.url} answers" in doctor
    assert f"ok    kafka       {kafka_bootstrap} answers" in doctor
    published = cryptolab(
        ["produce", "--source", "replay", "--tape", str(tape), "--speed", "max"], env
    ).stdout
    trades = reference_candles(tape_trades(tape))
    total = sum(int(cast(int, c["trades"])) for c in trades.values())
    assert f"trades={total} dlq=0" in published
    cryptolab(["stream", "--until-caught-up"], env)
    verify_store(env, tape, SYMBOLS)
    ran_on_the_worker(cluster, "cryptolab-stream")
