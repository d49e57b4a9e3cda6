"""Kafka credentials reach every client: a real broker that only accepts SASL users (PLAIN and
SCRAM-SHA-256 over plain TCP, PLAIN over TLS with a certificate from a throwaway CA), our
producer writing and Spark's Kafka source reading with them; a wrong password or an untrusted
certificate is a clear error, quickly, that never shows the password."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import end_offsets, ensure_topics
from cryptolab.errors import BrokerError, StreamingError
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from cryptolab.settings import load_settings
from cryptolab.store import open_store, queries
from cryptolab.streaming.job import StreamingJob
from tests.e2e.helpers import environment
from tests.reliability.results import record
from tests.reliability.sasl_broker import SaslBroker
from tests.reliability.tls_certs import Certificates, make_certificates

USER = "alice"
PASSWORD = 'Al1ce-kafka-Pw"quote\\slash'  # JAAS quoting; secret-scan: allow
WRONG = "not-alice-s-password"
SCRAM_USER, SCRAM_PASSWORD = "bob", "B0b-scram-Pw-2026"  # secret-scan: allow
CREDENTIALS = {"PLAIN": (USER, PASSWORD), "SCRAM-SHA-256": (SCRAM_USER, SCRAM_PASSWORD)}
ERROR_WITHIN_S = 10.0


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("kafka-certs"))


@pytest.fixture(scope="module")
def sasl_broker(
    tmp_path_factory: pytest.TempPathFactory, certs: Certificates
) -> Iterator[SaslBroker]:
    broker = SaslBroker(
        load_settings(data_dir=tmp_path_factory.mktemp("sasl-broker")),
        {USER: PASSWORD},
        tls=(certs.cert, certs.key),
        scram_users={SCRAM_USER: SCRAM_PASSWORD},
    )
    broker.start()
    yield broker
    broker.stop()


def sasl_settings(
    make_settings: Any, broker: SaslBroker, password: str, mechanism: str = "PLAIN", **extra: Any
) -> Any:
    return make_settings(
        kafka_bootstrap=broker.sasl_bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=CREDENTIALS[mechanism][0],
        kafka_sasl_password=password,
        **extra,
    )


def _stream_to_store(
    spark: Any, settings: Any, bootstrap: str, target: dict[int, int]
) -> tuple[StreamingJob, int]:
    """Run the streaming job until it has written ``target`` offsets; (the job, trades stored)."""
    store = open_store(settings)
    job = StreamingJob(spark, settings, bootstrap, store).start()
    try:
        deadline = time.monotonic() + 180
        while not job.caught_up(target):
            assert time.monotonic() < deadline, f"spark did not catch up: {job.processed()}"
            time.sleep(0.5)
    finally:
        job.stop()
    stored = sum(queries.trade_counts(store).values())
    store.close()
    return job, stored


@pytest.mark.parametrize("mechanism", sorted(CREDENTIALS))
def test_producer_and_spark_use_the_sasl_credentials(
    spark: Any, sasl_broker: SaslBroker, make_settings: Any, mechanism: str
) -> None:
    password = CREDENTIALS[mechanism][1]
    settings = sasl_settings(
        make_settings, sasl_broker, password, mechanism=mechanism, trigger_seconds=0.5
    )
    bootstrap = sasl_broker.sasl_bootstrap
    frames = list(synth_frames(["BTCUSDT", "ETHUSDT"], 20, 20, seed=5))
    started = time.monotonic()
    ensure_topics(settings, bootstrap)
    producer = TradeProducer(settings, bootstrap)
    producer.publish_all(frames)
    producer.flush()
    producer.close()
    produced = producer.stats.trades
    target = end_offsets(bootstrap, settings.topic, settings)
    assert sum(target.values()) == produced > 0

    job, stored = _stream_to_store(spark, settings, bootstrap, target)
    assert stored == produced
    checkpoint = [p for p in job.checkpoint_root.rglob("*") if p.is_file()]
    assert checkpoint  # Spark's checkpoint never stores the JAAS config with the password
    assert not [p for p in checkpoint if password.encode() in p.read_bytes()]
    record(
        "security",
        f"kafka SASL/{mechanism} credentials",
        attempted=f"broker with a SASL_PLAINTEXT listener ({mechanism} users); producer, admin, "
        "consumer and Spark's Kafka source given CRYPTOLAB_KAFKA_SASL_*",
        cases=produced,
        observed=f"trades produced {produced}, in Kafka {sum(target.values())}, stored by "
        f"Spark {stored}; password in {len(checkpoint)} checkpoint files: 0 times",
        seconds=round(time.monotonic() - started, 1),
    )


def test_a_wrong_kafka_password_is_a_clear_quick_error(
    spark: Any, sasl_broker: SaslBroker, make_settings: Any
) -> None:
    bootstrap = sasl_broker.sasl_bootstrap
    good = sasl_settings(make_settings, sasl_broker, PASSWORD)
    ensure_topics(good, bootstrap)
    wrong = sasl_settings(make_settings, sasl_broker, WRONG, topic=good.topic)

    started = time.monotonic()
    with pytest.raises(BrokerError) as admin_error:
        ensure_topics(wrong, bootstrap)
    admin_s = time.monotonic() - started
    started = time.monotonic()
    with pytest.raises(BrokerError) as producer_error:
        _ = TradeProducer(wrong, bootstrap).client
    producer_s = time.monotonic() - started
    for caught in (admin_error, producer_error):
        message = str(caught.value)
        assert f"refused the credentials of user '{USER}'" in message, message
        assert "CRYPTOLAB_KAFKA_SASL_PASSWORD" in message
        assert WRONG not in message and PASSWORD not in message
    assert admin_s < ERROR_WITHIN_S and producer_s < ERROR_WITHIN_S

    store = open_store(wrong)
    job = StreamingJob(spark, wrong, bootstrap, store).start()
    started = time.monotonic()
    try:
        with pytest.raises(StreamingError) as spark_error:
            while time.monotonic() - started < 120:
                job.raise_if_failed()
                time.sleep(0.5)
    finally:
        job.stop()
        store.close()
    spark_s = time.monotonic() - started
    spark_message = str(spark_error.value)
    assert "Authentication failed" in spark_message or "SaslAuthentication" in spark_message
    assert WRONG not in spark_message and PASSWORD not in spark_message
    record(
        "security",
        "kafka wrong password",
        attempted="same broker, CRYPTOLAB_KAFKA_SASL_PASSWORD wrong: topic admin, producer, "
        "Spark's Kafka source",
        cases=3,
        observed=f"admin error after {admin_s:.1f} s, producer {producer_s:.1f} s, Spark query "
        f"failed after {spark_s:.1f} s; 'refused the credentials of user {USER!r} ... Invalid "
        "username or password'; password in messages: 0 times",
    )


def test_a_wrong_scram_password_is_a_clear_quick_error(
    sasl_broker: SaslBroker, make_settings: Any
) -> None:
    """SCRAM is a two-step login: the probe runs both steps, so a refused SCRAM login says so
    at once too (kafka-python alone reports "Unable to bootstrap" after its 15 s timeout)."""
    bootstrap = sasl_broker.sasl_bootstrap
    mechanism = "SCRAM-SHA-256"
    good = sasl_settings(make_settings, sasl_broker, SCRAM_PASSWORD, mechanism=mechanism)
    ensure_topics(good, bootstrap)
    wrong = sasl_settings(make_settings, sasl_broker, WRONG, mechanism=mechanism, topic=good.topic)
    timings = []
    for attempt in (
        lambda: ensure_topics(wrong, bootstrap),
        lambda: TradeProducer(wrong, bootstrap).client,
    ):
        started = time.monotonic()
        with pytest.raises(BrokerError) as caught:
            attempt()
        timings.append(time.monotonic() - started)
        message = str(caught.value)
        assert f"refused the credentials of user '{SCRAM_USER}'" in message, message
        assert "invalid credentials with SASL mechanism SCRAM-SHA-256" in message
        assert WRONG not in message and SCRAM_PASSWORD not in message
    assert max(timings) < ERROR_WITHIN_S
    record(
        "security",
        "kafka wrong SCRAM password",
        attempted="SCRAM-SHA-256 user on the SASL listener, CRYPTOLAB_KAFKA_SASL_PASSWORD wrong: "
        "topic admin, producer",
        cases=2,
        observed=f"errors after {timings[0]:.1f} s and {timings[1]:.1f} s naming the user and the "
        "broker's reason; password in messages: 0 times",
    )


def test_plaintext_clients_cannot_use_the_sasl_listener(
    sasl_broker: SaslBroker, make_settings: Any, tmp_path: Path
) -> None:
    """The control: without credentials the SASL listener does not serve metadata."""
    settings = make_settings(kafka_bootstrap=sasl_broker.sasl_bootstrap)
    with pytest.raises(BrokerError):
        ensure_topics(settings, sasl_broker.sasl_bootstrap)


def test_cli_at_debug_level_never_prints_the_kafka_password(
    sasl_broker: SaslBroker, tmp_path: Path
) -> None:
    """kafka-python logs its configuration and SASL bytes at DEBUG: `-vv` must mask them."""
    tape = tmp_path / "tape.jsonl"
    frames = list(synth_frames(["BTCUSDT"], 5, 10, seed=3))
    write_frames(tape, frames)
    env = environment(
        tmp_path / "data",
        CRYPTOLAB_KAFKA_BOOTSTRAP=sasl_broker.sasl_bootstrap,
        CRYPTOLAB_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        CRYPTOLAB_KAFKA_SASL_MECHANISM="PLAIN",
        CRYPTOLAB_KAFKA_SASL_USERNAME=USER,
        CRYPTOLAB_KAFKA_SASL_PASSWORD=PASSWORD,
        CRYPTOLAB_TOPIC="cli_sasl_trades",
        CRYPTOLAB_DLQ_TOPIC="cli_sasl_dlq",
    )
    forms = {PASSWORD, repr(PASSWORD.encode())[2:-1], repr(PASSWORD)[1:-1]}
    outputs = []
    for args in (
        ["-vv", "doctor"],
        ["-vv", "produce", "--source", "replay", "--tape", str(tape), "--speed", "max"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "cryptolab", *args],
            env=env,
            text=True,
            capture_output=True,
            timeout=180,
            check=False,
        )
        output = done.stdout + done.stderr
        outputs.append(output)
        assert not [f for f in forms if f in output], output[-1500:]
    assert "DEBUG kafka" in outputs[1]  # the client's debug log really was on
    assert "answers (SASL_PLAINTEXT PLAIN user=alice password=***)" in outputs[0], outputs[0]
    published = f"published frames={len(frames)} trades={len(frames)} dlq=0"
    assert published in outputs[1], outputs[1][-800:]
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    for path in files:
        assert not [f for f in forms if f in path.read_text(errors="replace")], path
    record(
        "security",
        "kafka password at -vv",
        attempted="`cryptolab -vv doctor` and `-vv produce` against the SASL broker (kafka-python "
        "logs its config and SASL bytes at DEBUG)",
        cases=len(outputs),
        observed=f"{sum(o.count(' DEBUG ') for o in outputs)} DEBUG lines, "
        f"{sum(len(o) for o in outputs):,} chars and {len(files)} files checked: password "
        "found 0 times",
    )


def test_sasl_ssl_with_the_ca_file_for_producer_and_spark(
    spark: Any, sasl_broker: SaslBroker, certs: Certificates, make_settings: Any
) -> None:
    bootstrap = sasl_broker.sasl_ssl_bootstrap
    secured = {
        "kafka_bootstrap": bootstrap,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "PLAIN",
        "kafka_sasl_username": USER,
        "kafka_sasl_password": PASSWORD,
    }
    untrusted = make_settings(**secured)  # the system CAs do not know the throwaway CA
    started = time.monotonic()
    with pytest.raises(BrokerError, match="certificate that does not verify") as caught:
        ensure_topics(untrusted, bootstrap)
    untrusted_s = time.monotonic() - started
    assert "CRYPTOLAB_KAFKA_SSL_CAFILE" in str(caught.value) and untrusted_s < ERROR_WITHIN_S

    settings = make_settings(**secured, kafka_ssl_cafile=certs.ca, trigger_seconds=0.5)
    frames = list(synth_frames(["BTCUSDT"], 10, 20, seed=9))
    started = time.monotonic()
    ensure_topics(settings, bootstrap)
    producer = TradeProducer(settings, bootstrap)
    producer.publish_all(frames)
    producer.flush()
    producer.close()
    produced = producer.stats.trades
    target = end_offsets(bootstrap, settings.topic, settings)
    _job, stored = _stream_to_store(spark, settings, bootstrap, target)
    assert sum(target.values()) == produced == stored > 0
    record(
        "security",
        "kafka SASL_SSL with a CA file",
        attempted="SASL_SSL listener with a certificate from a throwaway CA; clients without "
        "CRYPTOLAB_KAFKA_SSL_CAFILE, then with it (kafka-python ssl_cafile, Spark PEM "
        "truststore)",
        cases=produced,
        observed=f"without the CA: refused in {untrusted_s:.1f} s ('certificate that does not "
        f"verify'); with it: trades produced {produced}, in Kafka {sum(target.values())}, "
        f"stored by Spark {stored}",
        seconds=round(time.monotonic() - started, 1),
    )
