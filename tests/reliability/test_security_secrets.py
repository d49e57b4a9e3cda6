"""Secrets come from the environment and .env only, and never come out again: not in
``repr(settings)``, logs (even at -vv), ``cryptolab doctor``, nor error messages."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from cryptolab.bus.broker import free_port
from tests.e2e.helpers import environment
from tests.reliability.results import record

PRINT_SETTINGS = """
import logging
from cryptolab import load_settings
s = load_settings()
print(s)
print(repr(s))
logging.basicConfig(level=logging.INFO)
logging.getLogger("cryptolab.test").warning("loaded settings %r", s)
"""


def secret(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}/+:@%"


def leaks(text: str, secrets: list[str]) -> list[str]:
    found = []
    for value in secrets:
        for form in {value, quote(value, safe=""), repr(value.encode())[2:-1]}:
            if form in text:
                found.append(value[:6])
    return found


@pytest.mark.row("security", "secrets masked")
def test_secrets_never_appear_in_output_logs_or_errors(tmp_path: Path) -> None:
    dotenv_ch, dotenv_dash, compose_only = secret("chpw"), secret("dashpw"), secret("compose")
    env_kafka, url_password = secret("kafka"), secret("url")
    secrets = [dotenv_ch, dotenv_dash, compose_only, env_kafka, url_password]
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text(
        f"CRYPTOLAB_CLICKHOUSE_PASSWORD={dotenv_ch}\n"
        f"CRYPTOLAB_DASH_PASSWORD={dotenv_dash}\n"
        f"CLICKHOUSE_PASSWORD={compose_only}\n"  # docker-compose's key: not ours, still secret
    )
    dead = free_port()
    env = environment(
        work / "data",
        CRYPTOLAB_KAFKA_BOOTSTRAP=f"127.0.0.1:{dead}",
        CRYPTOLAB_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        CRYPTOLAB_KAFKA_SASL_MECHANISM="PLAIN",
        CRYPTOLAB_KAFKA_SASL_USERNAME="alice",
        CRYPTOLAB_KAFKA_SASL_PASSWORD=env_kafka,
    )
    url = f"http://reader:{quote(url_password, safe='')}@127.0.0.1:{dead}/crypto"
    runs = [
        (["-m", "cryptolab", "-vv", "doctor"], {}, 1),
        (["-m", "cryptolab", "-vv", "query", "candles", "--symbol", "BTCUSDT"], {}, 0),
        (["-m", "cryptolab", "-vv", "doctor"], {"CRYPTOLAB_CLICKHOUSE_URL": url}, 1),
        (["-m", "cryptolab", "-vv", "reconcile"], {"CRYPTOLAB_CLICKHOUSE_URL": url}, 2),
        (["-m", "cryptolab", "doctor"], {"CRYPTOLAB_DASH_PORT": "not-a-port"}, 2),
        (["-c", PRINT_SETTINGS], {"CRYPTOLAB_CLICKHOUSE_URL": url}, 0),
    ]
    texts = []
    for args, extra, expected in runs:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=work,
            env={**env, **extra},
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == expected, (args, output[-800:])
        assert not leaks(output, secrets), (args, leaks(output, secrets), output[-800:])
        texts.append(output)
    doctor = texts[0]
    assert "CRYPTOLAB_CLICKHOUSE_PASSWORD=***" in doctor  # it was read from .env ...
    assert "CRYPTOLAB_KAFKA_SASL_PASSWORD=***" in doctor  # ... and from the environment
    assert "CRYPTOLAB_DASH_PASSWORD=***" in doctor
    assert "SASL_PLAINTEXT PLAIN user=alice password=***" in doctor
    assert f"http://reader:***@127.0.0.1:{dead}/crypto" in texts[2]
    assert "kafka_sasl_password=SecretStr('**********')" in texts[5]
    assert "clickhouse_url='http://reader:***@" in texts[5]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".env"]
    for path in files:
        assert not leaks(path.read_text(errors="replace"), secrets), path
    record(
        "security",
        "secrets masked",
        attempted="5 secrets from .env and the environment (ClickHouse, dashboard, Kafka SASL, "
        "a password inside CRYPTOLAB_CLICKHOUSE_URL, compose's own key); doctor, query, "
        "reconcile at -vv, a bad setting, print/repr/log of Settings",
        cases=len(runs),
        observed=f"{len(runs)} commands, {sum(len(t) for t in texts):,} chars of output and "
        f"{len(files)} files checked: secrets found 0 times; doctor lists them as ***",
    )
