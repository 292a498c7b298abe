"""A Spark standalone cluster on this machine: a master and workers, each its own JVM.

They are started through pyspark's own ``bin/spark-class``, as an operator starts them with
``sbin/start-master.sh``. Each worker has its own work directory and starts its own executor
JVMs, so a job that ran here kept no state in the driver that its tasks needed: a task that
read something only the driver holds fails on an executor exactly as it would on a cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

from streamrec.infra.devstack.free_port import free_port
from tests.engines.processes import kill, start_logged

SPARK_HOME = Path(pyspark.__file__).parent
HOST = "127.0.0.1"


@dataclass
class SparkStandalone:
    """``workers`` workers of ``cores`` cores and ``memory`` each, logs and work under ``root``."""

    root: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    _processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def environment(self) -> dict[str, str]:
        """What ``spark-class`` and ``spark-submit`` need to find this Spark and bind here."""
        return os.environ | {"SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": HOST}

    def up(self, timeout: float = 90) -> SparkStandalone:
        try:
            master = ["--port", str(self.port), "--webui-port", str(self.web_port)]
            self._start("master", "org.apache.spark.deploy.master.Master", master)
            for n in range(self.workers):
                work = self.root / f"worker-{n}"
                work.mkdir(parents=True, exist_ok=True)
                sizing = ["--cores", str(self.cores), "--memory", self.memory]
                places = ["--work-dir", str(work), "--webui-port", "0", self.master_url]
                self._start(f"worker-{n}", "org.apache.spark.deploy.worker.Worker", sizing + places)
            self._wait_for_workers(timeout)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stops every JVM, each worker's executors with it (they share its process group)."""
        kill(reversed(self._processes))
        self._processes.clear()

    def state(self) -> dict:
        """The master's own account: its workers and its running and completed applications."""
        with urllib.request.urlopen(f"http://{HOST}:{self.web_port}/json/", timeout=5) as answer:
            return json.load(answer)

    def executor_dirs(self, app_id: str) -> list[Path]:
        """The work directories the workers made for ``app_id``'s executors."""
        return sorted(self.root.glob(f"worker-*/{app_id}/*"))

    def _start(self, name: str, main_class: str, argv: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        options = "-Dspark.master.rest.enabled=false -Dspark.worker.cleanup.enabled=false"
        argv = [str(SPARK_HOME / "bin" / "spark-class"), main_class, "--host", HOST, *argv]
        env = self.environment() | {"SPARK_MASTER_OPTS": options}
        self._processes.append(start_logged(argv, self.root / f"{name}.log", env))

    def _wait_for_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._processes):
                raise RuntimeError(f"a Spark process exited; see the logs in {self.root}")
            with contextlib.suppress(OSError, ValueError):
                alive = [w for w in self.state()["workers"] if w["state"] == "ALIVE"]
                if len(alive) == self.workers:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"{self.workers} Spark workers did not register in {timeout:.0f} s")
