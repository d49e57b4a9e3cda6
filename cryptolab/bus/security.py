"""Kafka security settings -> client options, for every Kafka client cryptolab creates.

``CRYPTOLAB_KAFKA_SECURITY_PROTOCOL`` (PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL),
``CRYPTOLAB_KAFKA_SASL_MECHANISM`` (PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512),
``CRYPTOLAB_KAFKA_SASL_USERNAME``, ``CRYPTOLAB_KAFKA_SASL_PASSWORD`` (a secret) and
``CRYPTOLAB_KAFKA_SSL_CAFILE`` (PEM) become

* :func:`kafka_python_options`: keyword arguments of kafka-python's producer, consumer and admin
  client (the producer, the topic helpers, ``cryptolab doctor``);
* :func:`spark_kafka_options`: ``kafka.*`` options of Spark's Kafka source (the streaming job).

Inconsistent combinations never get here: :class:`cryptolab.settings.Settings` rejects them
when it is built. :func:`explain_kafka_failure` turns kafka-python's "Unable to bootstrap" after
an authentication failure into an error naming the user and the settings to check.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from cryptolab.errors import BrokerError
from cryptolab.settings import SASL_PROTOCOLS, SSL_PROTOCOLS, Settings

_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def _password(settings: Settings) -> str:
    secret = settings.kafka_sasl_password
    return secret.get_secret_value() if secret is not None else ""


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Security keyword arguments for ``KafkaProducer`` / ``KafkaConsumer`` /
    ``KafkaAdminClient``; empty for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in SASL_PROTOCOLS:
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=_password(settings),
        )
    if protocol in SSL_PROTOCOLS:
        options["ssl_check_hostname"] = True
        if settings.kafka_ssl_cafile is not None:
            options["ssl_cafile"] = str(settings.kafka_ssl_cafile.resolve())
    return options


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def spark_kafka_options(settings: Settings) -> dict[str, str]:
    """``kafka.*`` options of Spark's Kafka source (passed to its consumer and admin client);
    empty for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, str] = {"kafka.security.protocol": protocol}
    if protocol in SASL_PROTOCOLS:
        mechanism = str(settings.kafka_sasl_mechanism)
        options["kafka.sasl.mechanism"] = mechanism
        options["kafka.sasl.jaas.config"] = (
            f"{_LOGIN_MODULES[mechanism]} required "
            f"username={_jaas_quote(str(settings.kafka_sasl_username))} "
            f"password={_jaas_quote(_password(settings))};"
        )
    if protocol in SSL_PROTOCOLS and settings.kafka_ssl_cafile is not None:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = str(settings.kafka_ssl_cafile.resolve())
    return options


def describe_kafka_security(settings: Settings) -> str:
    """One line for logs and ``cryptolab doctor``; the password is never part of it."""
    protocol = settings.kafka_security_protocol
    parts: list[str] = [protocol]
    if protocol in SASL_PROTOCOLS:
        password = "***" if settings.kafka_sasl_password is not None else "unset"
        parts.append(
            f"{settings.kafka_sasl_mechanism} user={settings.kafka_sasl_username} "
            f"password={password}"
        )
    if settings.kafka_ssl_cafile is not None:
        parts.append(f"ca={settings.kafka_ssl_cafile}")
    return " ".join(parts)


_verified: set[tuple[str, str]] = set()
_verified_lock = threading.Lock()


def preflight(settings: Settings, bootstrap: str) -> None:
    """With TLS or SASL configured, check the login once per process and bootstrap before the
    first client: a refused login fails at once with the broker's reason instead of after the
    client's bootstrap timeout. An unreachable broker is left to the client's own retries."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return
    from cryptolab.bus.probe import UNREACHABLE, sasl_probe

    key = (bootstrap, describe_kafka_security(settings) + str(hash(_password(settings))))
    with _verified_lock:
        if key in _verified:
            return
    verdict = sasl_probe(settings, bootstrap)
    if verdict is None:
        with _verified_lock:
            _verified.add(key)
    elif not verdict.startswith(UNREACHABLE):
        raise BrokerError(f"Kafka at {bootstrap} {verdict}")


@contextlib.contextmanager
def explain_kafka_failure(settings: Settings, bootstrap: str, what: str) -> Iterator[None]:
    """Check the login first (:func:`preflight`), then turn a failure to reach Kafka into a
    BrokerError that says why: the broker's own verdict when TLS or SASL is configured (refused
    credentials naming the user and the settings to check, never the password; an untrusted
    certificate; a disabled mechanism), else "cannot reach"."""
    from kafka.errors import KafkaError

    try:
        preflight(settings, bootstrap)
    except BrokerError as exc:
        raise BrokerError(f"{what}: {exc}") from None
    try:
        yield
    except (KafkaError, OSError, ValueError) as exc:
        verdict = None
        if settings.kafka_security_protocol != "PLAINTEXT":
            from cryptolab.bus.probe import UNREACHABLE, sasl_probe

            verdict = sasl_probe(settings, bootstrap)
            if verdict is not None and verdict.startswith(UNREACHABLE):
                verdict = None
        if verdict:
            raise BrokerError(f"{what}: Kafka at {bootstrap} {verdict}") from exc
        raise BrokerError(f"{what}: cannot reach Kafka at {bootstrap}: {exc}") from exc
