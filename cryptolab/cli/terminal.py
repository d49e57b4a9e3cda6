"""What ``cryptolab`` shows on a terminal: its own lines (the JVMs log to files), a Ctrl-C
that stops cleanly, and a closing summary."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger("cryptolab")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Short(logging.Formatter):
    """``12:03:04 message`` for cryptolab's own lines; warnings and errors say what and who."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        own = record.name == "cryptolab" or record.name.startswith("cryptolab.")
        if record.levelno >= logging.WARNING:
            self._style._fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
        elif own:
            self._style._fmt = "%(asctime)s %(message)s"
        else:
            self._style._fmt = "%(asctime)s %(name)s: %(message)s"
        return super().format(record)


class _QuietLibraries(logging.Filter):
    """Without -v: no py4j records (it logs a traceback, on the root logger, for every Spark
    call cut short by a stop) and no kafka-python event-loop timing warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("py4j") or "/py4j/" in record.pathname.replace("\\", "/"):
            return False
        return not (record.name == "kafka.net.selector" and record.levelno < logging.ERROR)


def configure_logging(verbosity: int) -> None:
    """Default: cryptolab's lines at INFO, other libraries' warnings. ``-v``: every library at
    INFO with logger names, py4j included, and the Spark driver's log on the terminal too
    (``jvm_logs_to_terminal``). ``-vv``: debug."""
    from cryptolab.redact import RedactingFilter

    handler = logging.StreamHandler()
    if verbosity:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_Short())
        handler.addFilter(_QuietLibraries())
    handler.addFilter(RedactingFilter())  # secrets never reach the terminal or a file
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("cryptolab").setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    for chatty in ("kafka", "py4j", "werkzeug", "urllib3"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)


class StopSignals:
    """Ctrl-C (SIGINT) and SIGTERM, handled without I/O or locks in the handler itself (a
    handler runs between two bytecodes of the main thread, which may hold either): each press
    is counted, and a watcher thread calls ``on_press(n)``. While ``abortable`` (e.g. during a
    start that cannot be asked to stop), a second press raises KeyboardInterrupt instead."""

    def __init__(self, on_press: Callable[[int], None]) -> None:
        self.on_press = on_press
        self.abortable = False
        self.presses = 0
        self._seen = 0
        self._done = threading.Event()
        self._previous: dict[int, Any] = {}
        self._watcher = threading.Thread(target=self._watch, name="stop-signals", daemon=True)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.presses += 1
        if self.presses > 1 and self.abortable:
            raise KeyboardInterrupt

    def _watch(self) -> None:
        while not self._done.wait(0.1):
            while self._seen < self.presses:
                self._seen += 1
                try:
                    self.on_press(self._seen)
                except Exception as exc:  # never let the watcher die silently
                    log.error("handling Ctrl-C failed error=%r", exc)

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        self._watcher.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._watcher.join(timeout=2)
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def summary(totals: Any) -> str:
    """The closing line of ``cryptolab up`` (:class:`cryptolab.stack.RunTotals`)."""

    def count(value: int | None) -> str:
        return "?" if value is None else f"{value:,}"

    parts = [f"trades in {totals.trades_in:,}", f"stored {count(totals.stored)}"]
    if totals.dlq:
        parts.append(f"bad frames to the DLQ {totals.dlq:,}")
    parts.append(f"candles (10 s) {count(totals.candles)}")
    line = f"stopped after {duration(totals.seconds)}: " + ", ".join(parts)
    if totals.waiting:
        line += f"; still in Kafka {totals.waiting:,} (stored on the next start)"
    return line
