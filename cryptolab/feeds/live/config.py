"""Knobs of the live Binance client. Defaults follow Binance's documented limits; tests shrink
the times (a 24-hour rotation becomes seconds)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_STREAMS_PER_CONNECTION = 1024
"""Binance: at most 1024 streams on one connection."""
TIME_UNITS = ("MILLISECOND", "MICROSECOND")
"""Binance's ``timeUnit`` values (stream URL parameter, REST header ``X-MBX-TIME-UNIT``)."""


@dataclass(frozen=True)
class FeedConfig:
    # connections
    max_streams: int = MAX_STREAMS_PER_CONNECTION  # more symbols are sharded over connections
    time_unit: str = "MILLISECOND"  # or MICROSECOND: Binance's timeUnit opt-in (stream and REST)
    connect_timeout: float = 10.0  # one attempt: TCP, TLS and the WebSocket handshake
    rotate_after: float = 23.5 * 3600  # planned switch-over, before Binance's 24 h cut
    silence_timeout: float = 60.0  # watchdog: no frame and no ping for this long = dead socket
    healthy_after: float = 30.0  # a connection up this long resets the backoff
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    attempts_limit: int = 250  # connection attempts per window (Binance: 300 per 5 min per IP)
    attempts_window: float = 300.0
    control_interval: float = 0.25  # >= 0.2 s between pongs: under Binance's 5 messages/s
    min_overlap: float = 1.0  # switch-over: read the old connection at least this long...
    max_overlap: float = 10.0  # ...until it caught up with the new one, or at most this long
    # gaps
    tail_check_after: float = 5.0  # REST check of suspect symbols this long after a reconnect
    max_gap: int = 1_000_000  # larger gaps are reported lost instead of backfilled
    listing_max: int = 100_000  # a listing's first trades fetched over REST, at most this many
    backfill_workers: int = 3
    rest_weight_limit: int = 6000  # per minute (Binance's REQUEST_WEIGHT limit)
    rest_weight_share: float = 0.8  # of the limit this client allows itself
    # lifecycle
    drain_timeout: float = 30.0  # on stop: time allowed for the final backfills
    save_every: float = 1.0  # persist the last trade ids this often
    tick: float = 0.2

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {', '.join(TIME_UNITS)}")
        if not 1 <= self.max_streams <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"max_streams must be 1..{MAX_STREAMS_PER_CONNECTION}")
        if self.min_overlap > self.max_overlap:
            raise ValueError("min_overlap must not exceed max_overlap")
        if self.control_interval < 0.2:
            raise ValueError("control_interval below 0.2 s breaks Binance's 5 messages/s limit")
