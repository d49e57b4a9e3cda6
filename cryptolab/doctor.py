"""``cryptolab doctor``: can this configuration run, and if not, what to fix.

Checks Java, the cached JVM jars, the ports cryptolab would listen on, and that the Kafka,
ClickHouse and Spark the settings point at answer. Secrets are never printed.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptolab.errors import BrokerError, CryptolabError
from cryptolab.settings import Settings

OK, WARN, FAIL = "ok", "warn", "fail"
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a pipeline needs them. Never raises for a broken component."""
    checks: list[Check] = []
    probes: list[Callable[[Settings], list[Check]]] = [
        check_java,
        check_jars,
        check_ports,
        check_kafka,
        check_clickhouse,
        check_spark,
        check_security,
        check_speedups,
        check_logs,
    ]
    for probe in probes:
        try:
            checks.extend(probe(settings))
        except CryptolabError as exc:
            checks.append(Check(probe.__name__.removeprefix("check_"), FAIL, str(exc)))
    return checks


def render(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        label = check.status if check.status == OK else check.status.upper()
        lines.append(f"{label:<5} {check.name:<11} {check.detail}")
        if check.fix and check.status != OK:
            lines.append(f"{'':<17} fix: {check.fix}")
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    lines.append(f"{counts[OK]} ok, {counts[WARN]} warning(s), {counts[FAIL]} failure(s)")
    return "\n".join(lines) + "\n"


# -- checks -------------------------------------------------------------------------------------
def check_java(settings: Settings) -> list[Check]:
    from cryptolab.jvm import find_java

    java = find_java()  # JavaNotFoundError says what to install
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    version = out.splitlines()[0] if out else "unknown version"
    return [Check("java", OK, f"{java}: {version}")]


def check_jars(settings: Settings) -> list[Check]:
    from cryptolab.bus.broker import broker_bundle
    from cryptolab.streaming.session import connector_bundle

    bundles = [connector_bundle()]
    if not settings.kafka_bootstrap:
        bundles.append(broker_bundle(settings.kafka_version))
    checks = []
    for bundle in bundles:
        folder = bundle.folder(settings.jars_dir)
        if bundle.is_cached(settings.jars_dir):
            count = len(bundle.jars(settings.jars_dir))
            checks.append(Check("jars", OK, f"{bundle.name}: {count} jars in {folder}"))
        else:
            checks.append(
                Check(
                    "jars",
                    WARN,
                    f"{bundle.name} not cached in {folder}: the first start downloads it "
                    "from Maven Central",
                    "run `cryptolab jars fetch` while online (later starts are offline)",
                )
            )
    return checks


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(settings: Settings) -> list[Check]:
    from cryptolab.store.endpoint import find_share

    share = find_share(settings)  # a pipeline running on this data dir holds these ports
    host, port = settings.dash_host, settings.dash_port
    checks = []
    if _port_free(host, port):
        checks.append(Check("ports", OK, f"dashboard port {host}:{port} is free"))
    elif share is not None and share.extra.get("dashboard", "").rstrip("/").endswith(f":{port}"):
        checks.append(
            Check("ports", OK, f"dashboard port {port}: the running pipeline's (pid {share.pid})")
        )
    else:
        checks.append(
            Check(
                "ports",
                WARN,
                f"dashboard port {host}:{port} is in use: `cryptolab up`/`dash` cannot listen "
                "there (unless that is cryptolab already running)",
                "stop what uses it, or set CRYPTOLAB_DASH_PORT / pass --port",
            )
        )
    share_host, share_port = settings.store_share_host, settings.store_share_port
    if share_port == 0 or not settings.store_url.startswith("chdb://"):
        return checks
    if share is not None:
        checks.append(Check("ports", OK, f"store share: the running pipeline's, {share.url}"))
    elif _port_free(share_host, share_port):
        checks.append(Check("ports", OK, f"store share port {share_host}:{share_port} is free"))
    else:  # not a problem: the share picks a free port and says where in the endpoint file
        checks.append(
            Check(
                "ports",
                OK,
                f"store share port {share_host}:{share_port} is in use: a pipeline shares its "
                "store on a free port instead (<data_dir>/clickhouse.endpoint names it)",
            )
        )
    return checks


def check_kafka(settings: Settings) -> list[Check]:
    from cryptolab.bus.broker import LocalBroker

    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        status = LocalBroker(settings).status()
        if not status.running or not status.bootstrap:
            return [
                Check(
                    "kafka",
                    OK,
                    f"no CRYPTOLAB_KAFKA_BOOTSTRAP: `cryptolab up` starts a local Kafka "
                    f"{settings.kafka_version} broker in {settings.kafka_dir}",
                )
            ]
        bootstrap = status.bootstrap
    from cryptolab.bus.security import describe_kafka_security

    security = describe_kafka_security(settings)
    try:
        topics = _kafka_topics(settings, bootstrap)
    except BrokerError as exc:
        unreachable = "cannot reach Kafka" in str(exc)
        return [
            Check(
                "kafka",
                FAIL,
                f"cannot reach Kafka at {bootstrap}" if unreachable else f"{exc} [{security}]",
                "start the broker, or fix CRYPTOLAB_KAFKA_BOOTSTRAP (from the host use the "
                "broker's host listener, e.g. localhost:9092 with docker-compose)"
                if unreachable
                else "fix CRYPTOLAB_KAFKA_SECURITY_PROTOCOL / _SASL_MECHANISM / _SASL_USERNAME / "
                "_SASL_PASSWORD / _SSL_CAFILE",
            )
        ]
    state = "exists" if settings.topic in topics else "is created on the first start"
    return [Check("kafka", OK, f"{bootstrap} answers ({security}); topic {settings.topic} {state}")]


def _kafka_topics(settings: Settings, bootstrap: str) -> set[str]:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from cryptolab.bus.security import explain_kafka_failure, kafka_python_options

    with explain_kafka_failure(settings, bootstrap, "doctor"):
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(PROBE_TIMEOUT_S * 1000),
            bootstrap_timeout_ms=int(PROBE_TIMEOUT_S * 1000),
            **kafka_python_options(settings),
        )
    try:
        return set(admin.list_topics())
    except (KafkaError, OSError) as exc:
        raise BrokerError(f"cannot list topics on {bootstrap}: {exc}") from exc
    finally:
        admin.close()


def check_clickhouse(settings: Settings) -> list[Check]:
    url = settings.store_url
    scheme = urlsplit(url).scheme
    if scheme == "chdb":
        return [_check_chdb(settings)]
    from cryptolab.store.server import http_target, require_supported, server_version

    target = http_target(url, settings)
    version = server_version(target, timeout=PROBE_TIMEOUT_S)
    require_supported(target, version)
    return [Check("clickhouse", OK, f"ClickHouse {version} at {target.masked}")]


def _check_chdb(settings: Settings) -> Check:
    from pathlib import Path

    from cryptolab.store import open_store

    path = Path(settings.store_url[len("chdb://") :])
    if not path.exists():
        return Check("clickhouse", OK, f"embedded chDB, created at {path} on the first start")
    store = open_store(settings, create=False, read_only=True)  # StoreError if held, unshared
    try:
        if store.shared is None:
            return Check("clickhouse", OK, f"embedded chDB at {path} opens")
        version = store.command("SELECT version()")
        return Check(
            "clickhouse",
            OK,
            f"embedded chDB at {path}: owned by the running pipeline (pid {store.shared.pid}), "
            f"its read-only share at {store.url} answers (ClickHouse {version})",
        )
    finally:
        store.close()


def check_spark(settings: Settings) -> list[Check]:
    master = settings.spark_master
    if master.startswith("local"):
        return [Check("spark", OK, f"{master}: driver and executors in this process's JVM")]
    if not master.startswith("spark://"):
        return [Check("spark", WARN, f"{master}: not checked (only local and spark:// are)")]
    checks = []
    for address in master[len("spark://") :].split(","):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            checks.append(
                Check(
                    "spark",
                    FAIL,
                    f"bad master address {address!r} in {master}",
                    "use spark://host:port, e.g. spark://spark-master:7077",
                )
            )
        elif _reachable(host, int(port)):
            checks.append(Check("spark", OK, f"standalone master spark://{address} answers"))
        else:
            checks.append(
                Check(
                    "spark",
                    FAIL,
                    f"cannot reach the Spark master at spark://{address}",
                    "start it (`spark-class org.apache.spark.deploy.master.Master`, or "
                    "`docker-compose up spark-master`) or fix CRYPTOLAB_SPARK_MASTER",
                )
            )
    return checks


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def check_security(settings: Settings) -> list[Check]:
    """Which secrets are set (never their values) and whether the dashboard is exposed."""
    from cryptolab.bus.security import describe_kafka_security
    from cryptolab.dashboard.auth import is_loopback

    secrets = {
        "CRYPTOLAB_CLICKHOUSE_PASSWORD": settings.clickhouse_password,
        "CRYPTOLAB_KAFKA_SASL_PASSWORD": settings.kafka_sasl_password,
        "CRYPTOLAB_DASH_PASSWORD": settings.dash_password,
        "CRYPTOLAB_STORE_SHARE_PASSWORD": settings.store_share_password,
    }
    listed = ", ".join(f"{k}={'***' if v is not None else 'unset'}" for k, v in secrets.items())
    checks = [
        Check("secrets", OK, listed),
        Check("security", OK, f"kafka {describe_kafka_security(settings)}"),
    ]
    checks.append(_share_security(settings))
    host = settings.dash_host
    if settings.dash_password is not None:
        checks.append(
            Check("security", OK, f"dashboard on {host}: basic auth as {settings.dash_user}")
        )
    elif is_loopback(host):
        checks.append(Check("security", OK, f"dashboard on {host} (this machine only)"))
    elif settings.dash_allow_no_auth:
        checks.append(
            Check(
                "security",
                WARN,
                f"dashboard on {host} without a password (CRYPTOLAB_DASH_ALLOW_NO_AUTH=true)",
                "make sure a proxy or firewall in front authenticates",
            )
        )
    else:
        checks.append(
            Check(
                "security",
                FAIL,
                f"dashboard on {host} without a password: `cryptolab dash`/`up` refuse to start",
                "set CRYPTOLAB_DASH_PASSWORD, or CRYPTOLAB_DASH_HOST=127.0.0.1",
            )
        )
    return checks


def _share_security(settings: Settings) -> Check:
    from cryptolab.access import is_loopback

    host, port = settings.store_share_host, settings.store_share_port
    if port == 0 or not settings.store_url.startswith("chdb://"):
        return Check("security", OK, "store share off")
    if settings.store_share_password is not None:
        return Check("security", OK, f"store share on {host}, read-only, password (user default)")
    if is_loopback(host):
        return Check("security", OK, f"store share on {host}, read-only (this machine only)")
    return Check(
        "security",
        FAIL,
        f"store share on {host} without a password: "  # pragma: allowlist secret
        "`cryptolab up`/`stream` refuse to start",
        "set CRYPTOLAB_STORE_SHARE_PASSWORD, or CRYPTOLAB_STORE_SHARE_HOST=127.0.0.1",
    )


def check_speedups(settings: Settings) -> list[Check]:
    """kafka-python checksums record batches in pure Python unless the crc32c C module is there."""
    from kafka.record import util

    if util.crc32c_c is not None:
        return [Check("speedups", OK, "kafka-python checksums record batches in C (crc32c)")]
    return [
        Check(
            "speedups",
            WARN,
            "kafka-python checksums record batches in pure Python: the producer runs ~2x slower",
            fix="pip install crc32c (a dependency of cryptolab: `make bootstrap` installs it)",
        )
    ]


def log_files(settings: Settings) -> dict[str, Path]:
    """Where the JVMs log (the terminal shows only cryptolab's own lines): the Spark driver's,
    and the local Kafka broker's (none with an external Kafka)."""
    from cryptolab.bus.broker import LocalBroker
    from cryptolab.streaming.session import driver_logs

    files = dict(zip(("spark", "spark console"), driver_logs(settings), strict=True))
    if not settings.kafka_bootstrap:
        broker = LocalBroker(settings).log_files
        files.update(zip(("kafka", "kafka console"), broker, strict=True))
    return files


def check_logs(settings: Settings) -> list[Check]:
    checks = []
    for name, path in log_files(settings).items():
        state = f"{path.stat().st_size:,} bytes" if path.exists() else "not written yet"
        checks.append(Check("logs", OK, f"{name}: {path} ({state})"))
    return checks
