"""`cryptolab doctor` against real components: what is fine, what is broken, what to fix."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptolab.bus.broker import free_port
from cryptolab.doctor import FAIL, OK, WARN, Check, render, run_checks
from tests.e2e.helpers import environment


def by_name(checks: list[Check], name: str) -> list[Check]:
    found = [c for c in checks if c.name == name]
    assert found, f"no {name} check in {checks}"
    return found


def test_a_working_setup_is_all_ok(make_settings: Any, kafka_bootstrap: str) -> None:
    settings = make_settings(kafka_bootstrap=kafka_bootstrap, dash_port=free_port())
    checks = run_checks(settings)
    assert [c.status for c in checks] == [OK] * len(checks), render(checks)
    assert "openjdk" in by_name(checks, "java")[0].detail.lower()
    assert f"{kafka_bootstrap} answers" in by_name(checks, "kafka")[0].detail
    assert "spark-kafka-" in by_name(checks, "jars")[0].detail  # the broker jars: not needed
    assert len(by_name(checks, "jars")) == 1
    assert "in C (crc32c)" in by_name(checks, "speedups")[0].detail


def test_a_pure_python_crc_is_a_warning(make_settings: Any, monkeypatch: Any) -> None:
    from kafka.record import util

    monkeypatch.setattr(util, "crc32c_c", None)
    (check,) = by_name(run_checks(make_settings(dash_port=free_port())), "speedups")
    assert check.status == WARN and "pip install crc32c" in check.fix


def test_unreachable_services_fail_and_say_what_to_fix(make_settings: Any) -> None:
    secret = "pa55-word"  # pragma: allowlist secret (test value)
    dead = free_port()
    settings = make_settings(
        kafka_bootstrap=f"127.0.0.1:{dead}",
        spark_master=f"spark://127.0.0.1:{dead}",
        clickhouse_url=f"http://reader:{secret}@127.0.0.1:{dead}/crypto",
    )
    checks = run_checks(settings)
    for name in ("kafka", "spark", "clickhouse"):
        assert by_name(checks, name)[0].status == FAIL, render(checks)
    text = render(checks)
    assert "fix: start the broker, or fix CRYPTOLAB_KAFKA_BOOTSTRAP" in text
    assert "fix: start it (`spark-class org.apache.spark.deploy.master.Master`" in text
    assert f"cannot reach ClickHouse at http://reader:***@127.0.0.1:{dead}/crypto" in text
    assert secret not in text
    assert text.splitlines()[-1].endswith("3 failure(s)")


def test_missing_jars_and_a_taken_port_are_warnings(make_settings: Any, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        checks = run_checks(make_settings(cache_dir=tmp_path / "empty-cache", dash_port=port))
    jars = by_name(checks, "jars")
    assert [c.status for c in jars] == [WARN, WARN]  # connector + local broker bundles
    assert all("cryptolab jars fetch" in c.fix for c in jars)
    ports = by_name(checks, "ports")[0]
    assert ports.status == WARN and f"127.0.0.1:{port} is in use" in ports.detail
    assert not [c for c in checks if c.status == FAIL], render(checks)


def test_cli_exit_code_is_non_zero_only_when_something_is_broken(tmp_path: Path) -> None:
    def doctor(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cryptolab", "doctor"],
            env=environment(tmp_path / "data", **env),
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )

    fine = doctor(CRYPTOLAB_DASH_PORT=str(free_port()))
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "0 failure(s)" in fine.stdout
    broken = doctor(CRYPTOLAB_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    assert broken.returncode == 1
    assert any(line.startswith("FAIL  kafka") for line in broken.stdout.splitlines())
