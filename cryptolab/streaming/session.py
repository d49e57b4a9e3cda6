"""SparkSession factory with Spark's own Kafka connector on the classpath."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from cryptolab.jvm import Artifact, JarBundle, find_java, pyspark_jars_dir, resolve
from cryptolab.settings import Settings

log = logging.getLogger(__name__)


def spark_version() -> str:
    import pyspark

    return str(pyspark.__version__)


def connector_bundle() -> JarBundle:
    """``spark-sql-kafka-0-10`` of the installed pyspark's version, minus jars pyspark ships."""
    version = spark_version()
    shipped = frozenset(_shipped_names())
    return JarBundle(
        name=f"spark-kafka-{version}",
        artifacts=(Artifact("org.apache.spark", "spark-sql-kafka-0-10_2.13", version),),
        exclude_names=shipped,
    )


def _shipped_names() -> set[str]:
    from cryptolab.jvm import artifact_name

    return {artifact_name(p) for p in pyspark_jars_dir().glob("*.jar")}


def connector_jars(settings: Settings) -> list[Path]:
    return resolve(connector_bundle(), settings.jars_dir)


LOG_CONFIG = "log4j2.properties"
"""Shipped next to this module: the driver's log4j2 set-up (a rolling file; the terminal on -v)."""


def driver_logs(settings: Settings) -> tuple[Path, Path]:
    """The Spark driver's files: its log4j log, and its raw console output (JVM warnings,
    uncaught exceptions, Python workers' stderr)."""
    return settings.log_dir / "spark.log", settings.log_dir / "spark.out"


_launched_gateway = False
"""pyspark keeps one driver JVM per Python process, started by the first SparkContext."""


def _java_options(settings: Settings) -> str:
    log_file, _ = driver_logs(settings)
    config = resources.files("cryptolab.streaming") / LOG_CONFIG
    console = "WARN" if settings.jvm_logs_to_terminal else "OFF"
    return (
        f"-Dlog4j2.configurationFile={config} -Dcryptolab.log.file={log_file} "
        f"-Dcryptolab.console.level={console}"
    )


def _start_driver(conf: Any, settings: Settings) -> None:
    """Start the driver JVM with its console output in ``spark.out`` (or the terminal with
    ``jvm_logs_to_terminal``), through pyspark's ``popen_kwargs`` hook for exactly this."""
    global _launched_gateway
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway

    if _launched_gateway or settings.jvm_logs_to_terminal:
        return
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    _, console = driver_logs(settings)
    with open(console, "ab") as out:  # the child keeps its own descriptor
        gateway = launch_gateway(conf, popen_kwargs={"stdout": out, "stderr": subprocess.STDOUT})
    _launched_gateway = True
    atexit.register(_end_driver, gateway.proc)
    try:
        SparkContext(conf=conf, gateway=gateway)
    except ValueError:  # a SparkContext made elsewhere is running: use it, drop our JVM
        gateway.shutdown()
        _end_driver(gateway.proc)


def _end_driver(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    """At exit, end the driver JVM and wait for it: it exits by itself once its stdin closes,
    but only after this process is gone, which would leave it running past the command."""
    if proc is None or proc.poll() is not None:
        return
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextlib.contextmanager
def _keep_sigint() -> Iterator[None]:
    """pyspark's SparkContext makes Ctrl-C cancel every Spark job mid-batch and raise: keep the
    caller's handler instead (the CLI stops between micro-batches)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def create_spark(settings: Settings, app_name: str = "cryptolab") -> Any:
    """Create (or get) the SparkSession: ``settings.spark_master``, UTC, the Kafka connector.

    The driver's logs go to ``<data_dir>/logs/`` (:func:`driver_logs`), not the terminal."""
    find_java()
    jars = connector_jars(settings)
    # Workers must run this interpreter (pandas, pyarrow live here), not the system python3.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    conf = (
        SparkConf()
        .setMaster(settings.spark_master)
        .setAppName(app_name)
        .set("spark.jars", ",".join(str(j) for j in jars))
        .set("spark.sql.session.timeZone", "UTC")
        .set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .set("spark.sql.execution.arrow.pyspark.enabled", "true")
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.sql.streaming.minBatchesToRetain", "20")
        .set("spark.driver.extraJavaOptions", _java_options(settings))
    )
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    with _keep_sigint():
        _start_driver(conf, settings)
        spark = SparkSession.builder.config(conf=conf).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("spark session master=%s version=%s", settings.spark_master, spark.version)
    return spark
