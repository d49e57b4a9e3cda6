"""What `cryptolab` shows on a terminal: Ctrl-C handling, the closing summary, quiet libraries,
and stopping every part of something whatever the others do."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

from cryptolab.cli.main import build_parser
from cryptolab.cli.terminal import StopSignals, _QuietLibraries, duration, summary
from cryptolab.closing import stop_all
from cryptolab.stack import RunTotals


def test_stop_all_stops_every_part_and_raises_the_first_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped: list[str] = []

    def fails(name: str, exc: BaseException) -> None:
        stopped.append(name)
        raise exc

    with pytest.raises(RuntimeError, match="job"):
        stop_all(
            [
                ("job", lambda: fails("job", RuntimeError("job"))),
                ("nothing", None),
                ("dash", lambda: fails("dash", KeyboardInterrupt())),
                ("broker", lambda: stopped.append("broker")),
            ],
            logging.getLogger("test"),
        )
    assert stopped == ["job", "dash", "broker"]
    assert "stopping dash failed error=KeyboardInterrupt()" in caplog.text


def test_ctrl_c_is_counted_and_handled_off_the_signal_handler() -> None:
    presses: list[int] = []
    with StopSignals(presses.append) as signals:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 5
        while len(presses) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert presses == [1, 2]
        signals.abortable = True
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs in this thread, between two bytecodes
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "restored"


def test_summary_says_what_the_run_did() -> None:
    totals = RunTotals(trades_in=12345, dlq=0, stored=12345, candles=61, waiting=0, seconds=95.4)
    assert summary(totals) == (
        "stopped after 1 min 35 s: trades in 12,345, stored 12,345, candles (10 s) 61"
    )
    cut = RunTotals(trades_in=10, dlq=2, stored=None, candles=3, waiting=4, seconds=7200)
    assert summary(cut) == (
        "stopped after 2 h 00 min: trades in 10, stored ?, bad frames to the DLQ 2, "
        "candles (10 s) 3; still in Kafka 4 (stored on the next start)"
    )
    assert duration(42.4) == "42 s"


def record(name: str, level: int = logging.ERROR, path: str = "x.py") -> logging.LogRecord:
    return logging.LogRecord(name, level, path, 1, "message", None, None)


def test_library_noise_stays_off_the_terminal_without_v() -> None:
    quiet = _QuietLibraries()
    assert not quiet.filter(record("py4j.clientserver"))
    # py4j logs some tracebacks on the root logger
    assert not quiet.filter(record("root", path="/site-packages/py4j/java_gateway.py"))
    assert not quiet.filter(record("kafka.net.selector", logging.WARNING))
    assert quiet.filter(record("kafka.net.selector", logging.ERROR))
    assert quiet.filter(record("cryptolab.stack", logging.INFO))
    assert quiet.filter(record("kafka.producer", logging.WARNING))


@pytest.mark.parametrize(("flags", "console"), [([], "OFF"), (["-v"], "WARN")])
def test_v_puts_the_spark_driver_log_on_the_terminal_too(
    flags: list[str], console: str, tmp_path: Path
) -> None:
    from cryptolab.cli.commands import _settings
    from cryptolab.streaming.session import _java_options

    args = build_parser().parse_args([*flags, "--data-dir", str(tmp_path), "doctor"])
    options = _java_options(_settings(args))
    assert f"-Dcryptolab.console.level={console}" in options
    assert f"-Dcryptolab.log.file={tmp_path.resolve() / 'logs' / 'spark.log'}" in options
    help_text = " ".join(build_parser().format_help().split())
    assert "-v: also the Spark driver's log" in help_text and "-vv: debug" in help_text


def test_doctor_names_the_jvm_log_files(tmp_path: Path) -> None:
    from cryptolab.doctor import check_logs, log_files
    from cryptolab.settings import load_settings

    local = log_files(load_settings(data_dir=tmp_path))
    assert local == {
        "spark": tmp_path.resolve() / "logs" / "spark.log",
        "spark console": tmp_path.resolve() / "logs" / "spark.out",
        "kafka": tmp_path.resolve() / "kafka" / "logs" / "server.log",
        "kafka console": tmp_path.resolve() / "kafka" / "broker.out",
    }
    external = load_settings(data_dir=tmp_path, kafka_bootstrap="kafka.internal:9092")
    assert set(log_files(external)) == {"spark", "spark console"}, "no local broker, no its logs"
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "spark.log").write_text("x" * 1234)
    details = [check.detail for check in check_logs(external)]
    assert details[0] == f"spark: {tmp_path.resolve() / 'logs' / 'spark.log'} (1,234 bytes)"
    assert details[1].endswith("spark.out (not written yet)")
