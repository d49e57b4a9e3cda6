"""A real Spark standalone cluster (one master, ``workers`` workers of one core each) from the
installed pyspark.

The same classes docker-compose's spark-master and spark-worker services run, on 127.0.0.1:
``spark-class org.apache.spark.deploy.master.Master`` and ``...deploy.worker.Worker``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptolab.bus.broker import free_port
from cryptolab.jvm import pyspark_jars_dir

START_TIMEOUT_S = 120.0


def spark_class() -> Path:
    return pyspark_jars_dir().parent / "bin" / "spark-class"


@dataclass
class StandaloneCluster:
    directory: Path
    master_port: int = field(default_factory=free_port)
    master_ui_port: int = field(default_factory=free_port)
    worker_ui_port: int = field(default_factory=free_port)
    workers: int = 1
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    @property
    def work_dir(self) -> Path:
        return self.directory / "work"

    def _spawn(self, name: str, args: list[str]) -> None:
        env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
        log = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [str(spark_class()), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)

    def start(self) -> StandaloneCluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.master_port),
                "--webui-port",
                str(self.master_ui_port),
            ],
        )
        for number in range(self.workers):
            self._spawn(
                "worker" if number == 0 else f"worker{number + 1}",
                [
                    "org.apache.spark.deploy.worker.Worker",
                    self.url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    "1g",
                    "--webui-port",
                    str(self.worker_ui_port if number == 0 else free_port()),
                    "--work-dir",
                    str(self.work_dir),
                ],
            )
        self._wait_for_worker()
        return self

    def pids(self) -> list[int]:
        """The master's and workers' processes (executors run as their children)."""
        return [proc.pid for proc in self.procs if proc.poll() is None]

    def state(self) -> dict[str, Any]:
        """The master's own JSON status page (workers, running and completed applications)."""
        url = f"http://127.0.0.1:{self.master_ui_port}/json/"
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.loads(response.read()))

    def _wait_for_worker(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for proc in self.procs:
                assert proc.poll() is None, f"spark daemon exited:\n{self.logs()}"
            try:
                if self.state().get("aliveworkers", 0) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(
            f"no Spark worker registered in {START_TIMEOUT_S:.0f} s\n{self.logs()}"
        )

    def executor_logs(self, app_id: str) -> str:
        """stderr of every executor the worker ran for ``app_id``."""
        return "\n".join(
            p.read_text(errors="replace") for p in self.work_dir.glob(f"{app_id}/*/stderr")
        )

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.directory.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
