"""Faults the replay server can inject, and what it counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Withhold:
    """Trades ``first_id .. last_id`` of ``symbol`` are never sent on the stream (REST has them)."""

    symbol: str
    first_id: int
    last_id: int

    @classmethod
    def parse(cls, text: str) -> Withhold:
        """``BTCUSDT:100-120``."""
        try:
            symbol, ids = text.split(":")
            first, last = (int(i) for i in ids.split("-"))
        except ValueError:
            raise ValueError(f"withhold must look like BTCUSDT:100-120, got {text!r}") from None
        if first > last:
            raise ValueError(f"withhold range {text!r} is empty")
        return cls(symbol.upper(), first, last)


@dataclass(frozen=True)
class Faults:
    drop_every: float | None = None  # close every connection abruptly every N s
    shutdown_every: float | None = None  # send serverShutdown every N s...
    shutdown_grace: float = 1.0  # ...and close those connections this much later
    stall_every: float | None = None  # every N s, go silent on open connections (no frame/ping)
    withhold: tuple[Withhold, ...] = ()
    max_connection_age: float = 24 * 3600.0  # Binance's 24-hour cut
    ping_interval: float = 20.0
    pong_timeout: float = 60.0
    rest_fail_first: int = 0  # answer the first N REST calls with 429
    retry_after: int = 1
    weight_limit: int = 6000  # per minute


@dataclass
class ServerStats:
    connections: int = 0
    open: int = 0
    largest_subscription: int = 0  # most streams on one connection
    frames_sent: int = 0
    withheld: int = 0
    drops: int = 0
    shutdowns_sent: int = 0
    stalls: int = 0
    age_cuts: int = 0
    pings_sent: int = 0
    pongs_received: int = 0
    pong_timeouts: int = 0
    rate_violations: int = 0
    max_messages_per_second: int = 0
    rest_requests: int = 0
    rest_throttled: int = 0
