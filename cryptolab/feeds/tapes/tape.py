"""Tapes: JSON Lines of raw Binance combined-stream frames, exactly as received.

One line per frame, ``.jsonl`` or ``.jsonl.gz``::

    {"stream":"btcusdt@trade","data":{"e":"trade","E":1732867200123,"s":"BTCUSDT","t":1,...}}

Replay paces frames by their event time ``E`` (``speed=1`` is real time, ``None`` as fast as
possible). Lines that are not valid frames are replayed as they are, so the producer can route
them to the dead-letter topic like any bad frame from the exchange.
"""

from __future__ import annotations

import gzip
import io
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from cryptolab.errors import TapeError
from cryptolab.frames import event_time_of, trade_key
from cryptolab.model import MICROS_FROM, to_micros

log = logging.getLogger(__name__)


def open_tape(path: Path, mode: str = "r") -> IO[str]:
    """Open a tape for text reading or writing, gzip by the ``.gz`` suffix."""
    path = Path(path)
    if "r" in mode and not path.is_file():
        raise TapeError(f"tape not found: {path}")
    if path.suffix == ".gz":
        binary = gzip.GzipFile(path, mode.replace("t", "") + "b")
        return io.TextIOWrapper(binary, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def read_frames(path: Path) -> Iterator[str]:
    """Yield the raw frames of a tape, one per non-empty line, newline stripped."""
    try:
        with open_tape(path) as handle:
            for line in handle:
                line = line.rstrip("\r\n")
                if line:
                    yield line
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TapeError(f"cannot read tape {path}: {exc}") from exc


def write_frames(path: Path, frames: Iterable[str]) -> int:
    """Write frames to a tape (gzip if the name ends in .gz); returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open_tape(path, "w") as handle:
        for frame in frames:
            handle.write(frame)
            handle.write("\n")
            count += 1
    return count


@dataclass
class Pacer:
    """Sleeps so that frames come out at ``speed`` times the pace of their event times."""

    speed: float | None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _origin: tuple[float, int] | None = None

    def wait_for(self, event_time: int | None) -> None:
        if self.speed is None or event_time is None:
            return
        if self._origin is None:
            self._origin = (self.clock(), event_time)
            return
        start_clock, start_event = self._origin
        due = start_clock + (to_micros(event_time) - to_micros(start_event)) / 1e6 / self.speed
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


def parse_speed(value: float | str | None) -> float | None:
    """A replay speed: a positive factor (1 = real time), or ``"max"``/None = as fast as
    possible. Raises ValueError saying what is allowed."""
    if value is None or value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise ValueError(f"speed must be a number or 'max', got {value!r}") from None
    if not speed > 0:
        raise ValueError(f"speed must be positive or 'max', got {value!r}")
    return speed


def replay(frames: Iterable[str], speed: float | None) -> Iterator[str]:
    """Yield frames paced by event time; ``speed=None`` means as fast as possible."""
    pacer = Pacer(speed)
    for frame in frames:
        pacer.wait_for(event_time_of(frame))
        yield frame


def shift_frame(frame: str, time_shift_ms: int, id_shift: int) -> str:
    """Move a frame in time and trade-id space (used to loop a sample tape as if it were live).
    A frame in microseconds moves by the same time (``time_shift_ms * 1000``)."""
    try:
        message = orjson.loads(frame)
        data = message["data"]
        scale = 1000 if data["T"] >= MICROS_FROM else 1
        data["E"] += time_shift_ms * scale
        data["T"] += time_shift_ms * scale
        data["t"] += id_shift
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return frame
    return orjson.dumps(message).decode()


def looped_live(path: Path) -> Iterator[str]:
    """Replay a tape forever, shifted so that its first frame happens now and each pass continues
    the previous one (times and each symbol's trade ids keep increasing). The demo fallback when
    Binance is unreachable."""
    frames = list(read_frames(path))
    times = [to_micros(t) // 1000 for t in map(event_time_of, frames) if t is not None]
    if not times:
        raise TapeError(f"tape {path} has no trade frames to loop")
    id_range: dict[str, tuple[int, int]] = {}
    for symbol, trade_id in filter(None, map(trade_key, frames)):
        low, high = id_range.get(symbol, (trade_id, trade_id))
        id_range[symbol] = (min(low, trade_id), max(high, trade_id))
    span_ms = max(times) - min(times) + 1000
    base_shift = int(time.time() * 1000) - min(times)
    lap = 0
    while True:
        for frame in frames:
            key = trade_key(frame)
            id_span = (id_range[key[0]][1] - id_range[key[0]][0] + 1) if key else 0
            yield shift_frame(frame, base_shift + lap * span_ms, lap * id_span)
        lap += 1
