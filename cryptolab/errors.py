"""One root error; each stage's errors derive from it and say what to do."""


class CryptolabError(Exception):
    """Root of every error cryptolab raises on purpose."""


class ConfigError(CryptolabError):
    """A setting is unknown, mistyped or inconsistent."""


class JavaNotFoundError(CryptolabError):
    """No usable JDK."""


class JarResolutionError(CryptolabError):
    """JVM jars could not be resolved from Maven Central or the cache."""


class BrokerError(CryptolabError):
    """The local Kafka broker could not be started, reached or stopped."""


class FrameError(CryptolabError):
    """A raw feed frame could not be parsed into a Trade; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TapeError(CryptolabError):
    """A tape file is missing or unreadable."""


class StoreError(CryptolabError):
    """The ClickHouse store is unreachable or misconfigured."""


class StreamingError(CryptolabError):
    """The Spark streaming job failed."""


class HistoryError(CryptolabError):
    """Published history (data.binance.vision) could not be fetched, verified or loaded."""


class FeedError(CryptolabError):
    """The live feed (WebSocket or REST backfill) failed in a way it cannot recover from."""
