"""A real Apache Kafka broker (KRaft, single node) run as a Java subprocess.

Everything lives under ``<data_dir>/kafka``: ``server.properties``, the log dirs, ``broker.pid``,
``ports.json`` (ports are kept between starts) and the broker's own logs in ``logs/``.
The broker's jars (``org.apache.kafka:kafka_2.13`` and its runtime dependencies) are resolved
from Maven Central once and cached, see :mod:`cryptolab.jvm`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cryptolab.errors import BrokerError
from cryptolab.jvm import Artifact, JarBundle, find_java, resolve
from cryptolab.pids import pid_alive
from cryptolab.settings import Settings, require_writable_dir

log = logging.getLogger(__name__)

LOG4J_VERSION = "2.24.3"
START_TIMEOUT_S = 90.0


def broker_bundle(kafka_version: str) -> JarBundle:
    return JarBundle(
        name=f"kafka-broker-{kafka_version}",
        artifacts=(
            Artifact("org.apache.kafka", "kafka_2.13", kafka_version),
            # Kafka logs through slf4j 1.x; this binding routes it to log4j2, as the distribution.
            Artifact("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
        ),
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str | None
    directory: Path

    def describe(self) -> str:
        if self.running:
            return f"running pid={self.pid} bootstrap={self.bootstrap} dir={self.directory}"
        return f"stopped dir={self.directory}"


class LocalBroker:
    """Start, find and stop the local single-node Kafka broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.kafka_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self.owned = False  # True when this object started the broker (and so stops it)

    # -- files -------------------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.dir / "broker.pid"

    @property
    def ports_file(self) -> Path:
        return self.dir / "ports.json"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def log_files(self) -> tuple[Path, Path]:
        """The broker's log4j log and its raw console output."""
        return self.log_dir / "server.log", self.dir / "broker.out"

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _ports(self) -> tuple[int, int]:
        try:
            saved = json.loads(self.ports_file.read_text())
            broker, controller = int(saved["broker"]), int(saved["controller"])
        except (OSError, ValueError, KeyError):
            broker, controller = 0, 0
        if self.settings.kafka_port:
            broker = self.settings.kafka_port
            if port_in_use(broker):
                raise BrokerError(
                    f"port {broker} (CRYPTOLAB_KAFKA_PORT) is taken: stop what uses it or pick "
                    "another port (0 picks a free one)"
                )
        if not broker or port_in_use(broker):
            broker = free_port()
        if not controller or controller == broker or port_in_use(controller):
            controller = free_port()
            while controller == broker:
                controller = free_port()
        self.ports_file.write_text(json.dumps({"broker": broker, "controller": controller}))
        return broker, controller

    def _write_properties(self, broker: int, controller: int) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "num.partitions": str(self.settings.topic_partitions),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "168",
        }
        path = self.dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    # -- lifecycle ---------------------------------------------------------------------------
    def status(self) -> BrokerStatus:
        pid = self._read_pid()
        if pid is None or not pid_alive(pid):
            return BrokerStatus(False, None, None, self.dir)
        try:
            port = int(json.loads(self.ports_file.read_text())["broker"])
        except (OSError, ValueError, KeyError):
            return BrokerStatus(True, pid, None, self.dir)
        return BrokerStatus(True, pid, f"127.0.0.1:{port}", self.dir)

    def start(self) -> str:
        """Start the broker (or find the one already running) and return its bootstrap address."""
        current = self.status()
        if current.running and current.bootstrap:
            log.info(
                "kafka broker already running pid=%s bootstrap=%s", current.pid, current.bootstrap
            )
            return current.bootstrap
        java = find_java()
        jars = resolve(broker_bundle(self.settings.kafka_version), self.settings.jars_dir)
        require_writable_dir(self.dir, "CRYPTOLAB_DATA_DIR")
        self.log_dir.mkdir(exist_ok=True)
        broker_port, controller_port = self._ports()
        props = self._write_properties(broker_port, controller_port)
        classpath = os.pathsep.join(str(j) for j in jars)
        log4j = resources.files("cryptolab.bus") / "log4j2.properties"
        jvm = [
            java,
            f"-Xmx{self.settings.kafka_heap}",
            f"-Xms{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            classpath,
        ]
        if not (self.dir / "data" / "meta.properties").exists():
            self._format(jvm, props)
        out = open(self.log_files[1], "ab")  # noqa: SIM115 - handed to the child
        self._proc = subprocess.Popen(
            [*jvm, "kafka.Kafka", str(props)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, we stop it in order
        )
        out.close()
        self.pid_file.write_text(str(self._proc.pid))
        self.owned = True
        bootstrap = f"127.0.0.1:{broker_port}"
        self._wait_ready(bootstrap)
        log.info("kafka broker started pid=%s bootstrap=%s", self._proc.pid, bootstrap)
        return bootstrap

    def _format(self, jvm: list[str], props: Path) -> None:
        cluster_id = _kafka_uuid()
        command = [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)]
        done = subprocess.run(
            command + self._format_options(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed: {done.stdout}{done.stderr}")

    def _format_options(self) -> list[str]:
        """More options for Kafka's storage format (a subclass adds e.g. SCRAM users)."""
        return []

    def _wait_ready(self, bootstrap: str) -> None:
        _host, port = bootstrap.rsplit(":", 1)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(
                    f"Kafka broker exited with code {self._proc.returncode}.\n{self.tail()}"
                )
            if port_in_use(int(port)) and _metadata_ok(bootstrap):
                return
            time.sleep(0.3)
        self.stop()
        raise BrokerError(
            f"Kafka broker did not become ready in {START_TIMEOUT_S:.0f} s.\n{self.tail()}"
        )

    def tail(self, lines: int = 20) -> str:
        texts = []
        for path in reversed(self.log_files):
            if path.exists():
                texts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(texts[-lines:]) or "(no broker output)"

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); True if one was running."""
        pid = self._proc.pid if self._proc is not None else self._read_pid()
        if pid is None or not pid_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            if self._proc is not None:
                self._proc.poll()
            time.sleep(0.2)
        if pid_alive(pid):
            log.warning("kafka broker did not stop in %.0f s, killing pid=%s", timeout, pid)
            os.kill(pid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(timeout=10)
        self.pid_file.unlink(missing_ok=True)
        return True


def _kafka_uuid() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as random-uuid).

    Like Kafka's Uuid.randomUuid, never one starting with "-": the storage tool would read it as
    an option (1 start in 64 failed with "--cluster-id: expected one argument")."""
    import base64

    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _metadata_ok(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
