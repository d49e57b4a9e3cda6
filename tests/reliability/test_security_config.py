"""Kafka security settings: what each client is given, and every inconsistent combination is
a ConfigError that says what to set (and never shows the password)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cryptolab.bus.security import kafka_python_options, spark_kafka_options
from cryptolab.errors import ConfigError
from cryptolab.settings import load_settings
from tests.reliability.results import record

SECRET = "Pw-" + 'with"quote\\and-backslash'  # pragma: allowlist secret (a test fixture)


def test_sasl_ssl_scram_options_for_kafka_python_and_spark(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(
        kafka_bootstrap="broker:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password=SECRET,
        kafka_ssl_cafile=ca,
    )
    assert kafka_python_options(settings) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc",
        "sasl_plain_password": SECRET,
        "ssl_check_hostname": True,
        "ssl_cafile": str(ca.resolve()),
    }
    spark = spark_kafka_options(settings)
    assert spark["kafka.security.protocol"] == "SASL_SSL"
    assert spark["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert spark["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="svc" password="Pw-with\\"quote\\\\and-backslash";'  # pragma: allowlist secret
    )
    assert spark["kafka.ssl.truststore.type"] == "PEM"
    assert spark["kafka.ssl.truststore.location"] == str(ca.resolve())
    plain = load_settings()
    assert kafka_python_options(plain) == {} and spark_kafka_options(plain) == {}


BAD = [
    ({"kafka_security_protocol": "SASL_SSL"}, "needs CRYPTOLAB_KAFKA_SASL_MECHANISM"),
    (
        {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN",
         "kafka_sasl_username": "u"},
        "needs CRYPTOLAB_KAFKA_SASL_PASSWORD",
    ),
    ({"kafka_sasl_password": SECRET}, "set but CRYPTOLAB_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
    (
        {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN",
         "kafka_sasl_username": "u", "kafka_sasl_password": SECRET, "kafka_ssl_cafile": "ca.pem"},
        "use SSL or SASL_SSL",
    ),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/no/such/ca.pem"}, "is not a file"),
    ({"kafka_security_protocol": "TLS"}, "CRYPTOLAB_KAFKA_SECURITY_PROTOCOL"),
    ({"kafka_sasl_mechanism": "GSSAPI"}, "CRYPTOLAB_KAFKA_SASL_MECHANISM"),
]  # fmt: skip


@pytest.mark.parametrize(("values", "message"), BAD)
def test_inconsistent_kafka_security_is_a_clear_error(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(kafka_bootstrap="broker:9093", **values)
    assert SECRET not in str(caught.value)


@pytest.mark.row("security", "kafka security settings")
def test_security_needs_an_external_cluster_and_the_combinations_are_recorded() -> None:
    with pytest.raises(
        ConfigError, match="applies to an external cluster: set CRYPTOLAB_KAFKA_BOOTSTRAP"
    ):
        load_settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username="u",
            kafka_sasl_password=SECRET,
        )
    record(
        "security",
        "kafka security settings",
        attempted="SASL_SSL/SCRAM-SHA-512 + CA file mapped to kafka-python and Spark options; "
        "inconsistent combinations loaded",
        cases=len(BAD) + 1,
        observed=f"{len(BAD) + 1} of {len(BAD) + 1} combinations rejected with a ConfigError "
        "naming the setting; password in errors: 0 times",
    )
