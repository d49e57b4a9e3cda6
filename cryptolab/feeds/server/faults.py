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
    # Binance's limits, held as a violation when exceeded (tests shrink the window)
    attempts_limit: int = 300  # connection attempts per IP...
    attempts_window: float = 300.0  # ...in this many seconds
    max_url_chars: int = 8004  # longer stream URLs are refused (reported by users of Binance)


@dataclass
class ServerStats:
    """What the server saw. :meth:`violations` lists every Binance limit a client broke."""

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
    exchange_info_requests: int = 0
    control_requests: int = 0  # SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS received
    bad_requests: int = 0  # text messages that are not a valid request
    max_attempts_in_window: int = 0  # most connection attempts of one IP within the window
    attempts_refused: int = 0  # over the attempt limit
    urls_too_long: int = 0
    stream_limit_refusals: int = 0  # a subscription past 1024 streams on one connection

    def violations(self) -> list[str]:
        """Every limit a client exceeded (empty when it kept them all)."""
        found = {
            "connections closed for sending more than 5 messages in a second": self.rate_violations,
            "connection attempts refused over the per-IP limit": self.attempts_refused,
            "connections refused for a URL over the length limit": self.urls_too_long,
            "subscriptions refused past 1024 streams on a connection": self.stream_limit_refusals,
            "malformed control messages": self.bad_requests,
        }
        return [f"{what}: {count}" for what, count in found.items() if count]
