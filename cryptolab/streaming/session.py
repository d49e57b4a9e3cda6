"""SparkSession factory with Spark's own Kafka connector on the classpath."""

from __future__ import annotations

import logging
import os
import sys
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


def create_spark(settings: Settings, app_name: str = "cryptolab") -> Any:
    """Create (or get) the SparkSession: ``settings.spark_master``, UTC, the Kafka connector."""
    find_java()
    jars = connector_jars(settings)
    # Workers must run this interpreter (pandas, pyarrow live here), not the system python3.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.jars", ",".join(str(j) for j in jars))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.minBatchesToRetain", "20")
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=WARN")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    log.info("spark session master=%s version=%s", settings.spark_master, spark.version)
    return spark
