"""What the live feed has done, for the logs and the dashboard."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class FeedCounters:
    """Monotonic counters of one feed run (``connections`` is a gauge: sockets open now).

    - ``messages``: text frames received on the WebSocket (every connection, duplicates included)
    - ``trades``: unique trades handed on towards Kafka, live and backfilled
    - ``reconnects``: connections lost (closed, failed, or silent) and re-opened
    - ``gaps_found``: holes in a symbol's consecutive trade ids (after a reconnect, a restart...)
    - ``trades_backfilled``: trades fetched over REST to fill gaps
    - ``duplicates_dropped``: trades already handed on (connection overlap, restart)
    - ``trades_lost``: trades that could not be recovered (REST failed, gap over the limit)
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

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
