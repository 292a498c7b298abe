"""The Spark session of the feature job, built from the ``[spark]`` config section.

``spark.master`` is ``local[2]`` by default; point it at a cluster (``spark://host:7077``,
``yarn``, ``k8s://...``) to run the same job there, with streamrec installed on the workers.
Executor sizing, the UI and any other ``spark.*`` setting (``[spark.conf]``) come from the same
section, so one configuration file serves the driver wherever it runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from streamrec.features.event_source import EventBusDataSource
from streamrec.infra.core.config import Config

_LOG4J = Path(__file__).with_name("log4j2.properties")


def build_spark_session(
    config: Config, app_name: str = "streamrec-features", jvm_plans_only: bool = True
) -> SparkSession:
    """Starts (or joins) the session; call it from the entry point, once per process.

    Python workers must run this interpreter, the one with streamrec and its dependencies,
    through its launcher (:mod:`.spark_python`) where it is installed. Spark's Python data
    sources start their planner workers from ``PYSPARK_PYTHON`` alone (the
    ``spark.pyspark.python`` setting does not reach them), so the variable is set here.
    The workers fork from :mod:`.spark_daemon`, which loads their modules once.

    ``jvm_plans_only`` is for jobs whose work is all in Python workers, as the streaming
    feature job's is: their JVMs only plan batches and pass offset ranges, and the optimising
    JIT compiler spent 7 of the JVM's 17 CPU seconds on a 1M-event run, on the same two cores
    as the work. Such JVMs stop at the quick compiler. Jobs that shuffle in the JVM (backfill)
    keep the full one.
    """
    os.environ["PYSPARK_PYTHON"] = _python_for_spark()
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    submitted = _given_to_spark_submit()
    builder = SparkSession.builder.appName(app_name)
    for key, value in _settings(config, jvm_plans_only).items():
        if key not in submitted:
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.dataSource.register(EventBusDataSource)
    return spark


def _settings(config: Config, jvm_plans_only: bool) -> dict[str, str]:
    """Every setting the session is built with, from the config file's ``[spark]``."""
    java_options = f"-Dlog4j2.configurationFile={_LOG4J.as_uri()}"
    if jvm_plans_only:
        java_options += " -XX:TieredStopAtLevel=1"
    return {
        "spark.master": config.spark.master,
        "spark.driver.memory": config.spark.driver_memory,
        "spark.driver.extraJavaOptions": java_options,
        "spark.executor.extraJavaOptions": java_options,
        "spark.sql.shuffle.partitions": str(config.spark.shuffle_partitions),
        "spark.ui.enabled": "true" if config.spark.ui else "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.python.daemon.module": "streamrec.features.spark_daemon",
        "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
    } | _cluster_settings(config)


def _cluster_settings(config: Config) -> dict[str, str]:
    """The settings given only when configured, then ``[spark.conf]`` passed through."""
    spark = config.spark
    given = {
        "spark.executor.memory": spark.executor_memory,
        "spark.executor.cores": str(spark.executor_cores) if spark.executor_cores else "",
        "spark.sql.streaming.checkpointFileManagerClass": spark.checkpoint_file_manager,
    }
    return {key: value for key, value in given.items() if value} | spark.conf


def _given_to_spark_submit() -> set[str]:
    """The settings of a driver started by ``spark-submit``, which win over the file's.

    spark-submit starts the JVM first and hands this process its gateway; its ``--master``,
    ``--deploy-mode`` and ``--conf`` are then the JVM's, and a config file written for
    ``streamrec features run`` (``local[2]`` by default) must not undo them.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return set()
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return {key for key, _ in SparkConf().getAll()}


def _python_for_spark() -> str:
    """The launcher installed beside this interpreter, else the interpreter itself."""
    launcher = Path(sys.executable).with_name("streamrec-spark-python")
    return str(launcher) if launcher.exists() else sys.executable
