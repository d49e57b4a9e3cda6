"""What the live feed has done, for the logs and the dashboard."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class FeedCounters:
    """Counters of one feed run. Gauges (values now): ``connections`` (sockets open),
    ``symbols`` (followed), ``streams`` (subscribed, every connection),
    ``streams_per_connection_max``, ``attempts_in_window`` (connection attempts within the
    limiter's window: Binance allows 300 per 5 minutes per IP). The rest only grow:

    - ``messages``: text frames received on the WebSocket (every connection, duplicates included)
    - ``trades``: unique trades handed on towards Kafka, live and backfilled
    - ``reconnects``: connections lost (closed, failed, or silent) and re-opened
    - ``gaps_found``: holes in a symbol's consecutive trade ids (after a reconnect, a restart...)
    - ``trades_backfilled``: trades fetched over REST to fill gaps
    - ``duplicates_dropped``: trades already handed on (connection overlap, restart)
    - ``trades_lost``: trades that could not be recovered (REST failed, gap over the limit)
    - ``listed`` / ``delisted``: symbols subscribed / dropped while running (``symbols=all``)
    - ``control_messages``: pongs and (un)subscribe requests sent; ``control_per_s_max``: the
      most one connection sent within a second (Binance allows 5)
    """

    messages: int = 0
    trades: int = 0
    reconnects: int = 0
    gaps_found: int = 0
    trades_backfilled: int = 0
    duplicates_dropped: int = 0
    trades_lost: int = 0
    rotations: int = 0
    server_shutdowns: int = 0
    watchdog_timeouts: int = 0
    connect_attempts: int = 0
    connections: int = 0
    rest_requests: int = 0
    rest_throttled: int = 0
    other_frames: int = 0
    symbols: int = 0
    listed: int = 0
    delisted: int = 0
    streams: int = 0
    streams_per_connection_max: int = 0
    control_messages: int = 0
    control_per_s_max: int = 0
    attempts_in_window: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
