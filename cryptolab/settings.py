"""One frozen Settings object.

Precedence: explicit argument (CLI flag, notebook call) > environment variable ``CRYPTOLAB_*``
> ``.env`` file > default. An unknown ``CRYPTOLAB_*`` variable or ``.env`` key fails loudly, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from cryptolab import redact
from cryptolab.errors import ConfigError
from cryptolab.redact import mask_url

ENV_PREFIX = "CRYPTOLAB_"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
ALL_SYMBOLS = "ALL"
"""``symbols=all``: every symbol trading on Binance spot, followed as listings change."""
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
SSL_PROTOCOLS = ("SSL", "SASL_SSL")


class _OwnDotEnv(PydanticBaseSettingsSource):
    """``.env`` is shared with docker-compose: only its ``CRYPTOLAB_*`` keys are ours (an
    unknown ``CRYPTOLAB_*`` key still fails; ``CLICKHOUSE_PASSWORD=...`` is compose's). Read
    with python-dotenv's public ``dotenv_values``, values validated like environment strings."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ returns every value at once

    def __call__(self) -> dict[str, Any]:
        config = self.settings_cls.model_config
        path = Path(str(config.get("env_file") or ".env"))
        if not path.is_file():
            return {}
        values = dotenv_values(path, encoding=config.get("env_file_encoding") or "utf-8")
        return {
            key[len(ENV_PREFIX) :].lower(): value
            for key, value in values.items()
            if key.upper().startswith(ENV_PREFIX) and value is not None
        }


class Settings(BaseSettings):
    """Every knob of cryptolab. Construct through :func:`load_settings`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _OwnDotEnv(settings_cls), file_secret_settings

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Field(
        Path("data"), description="local state: broker log, chDB data, checkpoints"
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "cryptolab",
        description="downloaded JVM jars (Ivy cache) and other downloads",
    )
    symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_SYMBOLS,
        description="symbols of the live feed, comma-separated (BTCUSDT,ETHUSDT); or `all`: every "
        "symbol trading on Binance spot (read from exchangeInfo, followed as symbols are listed "
        "and delisted)",
    )
    quote_asset: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9]{2,12}$",
        description="with symbols=all: only the symbols quoted in this asset, e.g. USDT",
    )
    symbols_refresh_seconds: float = Field(
        300.0,
        ge=1,
        description="with symbols=all: re-read exchangeInfo this often, to subscribe new "
        "listings and drop delisted symbols from the feed (their data stays)",
    )

    # Kafka
    kafka_bootstrap: str | None = Field(None, description="external cluster; unset = local broker")
    kafka_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="local broker port; 0 = the port of the last run if free, else any free port",
    )
    kafka_version: str = Field("4.1.1", description="Apache Kafka version of the local broker")
    kafka_heap: str = Field("512m", description="-Xmx of the local broker JVM")
    topic: str = Field(
        "binance_trades", min_length=1, description="Kafka topic of normalized trades"
    )
    dlq_topic: str = Field(
        "binance_trades_dlq", min_length=1, description="dead-letter topic: bad frames + reason"
    )
    topic_partitions: int = Field(3, ge=1, description="partitions of the trades topic")
    topic_replication_factor: int | None = Field(
        None,
        ge=1,
        description="replicas of the topics cryptolab creates; unset = the cluster's "
        "default.replication.factor",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="of CRYPTOLAB_KAFKA_BOOTSTRAP (the local broker is PLAINTEXT)"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL)"
    )
    kafka_sasl_username: str | None = Field(None, min_length=1, description="SASL user")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret)")
    kafka_ssl_cafile: Path | None = Field(None, description="PEM CA bundle of the brokers")

    # Spark
    spark_master: str = Field("local[*]", description="local[*] or spark://host:7077")
    trigger_seconds: float = Field(1.0, gt=0, description="micro-batch trigger interval")
    watermark_seconds: float = Field(5.0, ge=0, description="event-time lateness allowed")
    shuffle_partitions: int = Field(2, ge=1, description="spark.sql.shuffle.partitions")
    max_offsets_per_trigger: int | None = Field(
        None, ge=1, description="cap on Kafka records per micro-batch; unset = no cap"
    )
    starting_offsets: str = Field(
        "earliest",
        pattern="^(earliest|latest)$",
        description="where a new checkpoint starts reading the topic: earliest or latest",
    )
    jvm_logs_to_terminal: bool = Field(
        False,
        description="print the Spark driver's log lines on the terminal too (`cryptolab -v`); "
        "they always go to <data_dir>/logs/spark.log",
    )

    # ClickHouse
    clickhouse_url: str | None = Field(
        None, description="chdb:///path or http(s)://user@host:8123/db"
    )
    clickhouse_database: str = Field(
        "crypto",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="database (chdb://, or an http URL without a path)",
    )
    clickhouse_user: str | None = Field(
        None, min_length=1, description="user when the URL names none (default: default)"
    )
    clickhouse_password: SecretStr | None = Field(None, description="ClickHouse password (secret)")
    clickhouse_verify: bool = Field(True, description="https: verify the server certificate")
    clickhouse_ca_cert: Path | None = Field(None, description="https: PEM CA of the server")
    store_share_port: int = Field(
        8123,
        ge=0,
        le=65535,
        description="the process that owns an embedded (chdb://) store serves it read-only over "
        "ClickHouse's HTTP interface here (a free port when taken); 0 = off",
    )
    store_share_host: str = Field(
        "127.0.0.1",
        description="address of the read-only share; non-loopback needs "
        "CRYPTOLAB_STORE_SHARE_PASSWORD",
    )
    store_share_password: SecretStr | None = Field(
        None, description="password of the share's user `default` (basic auth) (secret)"
    )
    store_share_threads: int = Field(
        2, ge=1, le=64, description="shared queries that run at once (one thread each); more wait"
    )
    store_share_max_seconds: float = Field(
        30.0, gt=0, description="a shared query running longer is stopped (max_execution_time)"
    )
    store_share_max_rows: int = Field(
        10_000_000, ge=1, description="a shared query returning more rows fails (max_result_rows)"
    )
    store_retry_seconds: float = Field(
        300.0, ge=0, description="retry a failed store write this long before the stream stops"
    )

    # Exactness and retention
    reconcile_every_seconds: float = Field(
        60.0, ge=0, description="re-derive closed candles from raw trades this often; 0 = off"
    )
    reconcile_lookback_seconds: float = Field(3600.0, gt=0, description="how far back it looks")
    trades_ttl_days: int = Field(0, ge=0, description="delete raw trades older than this; 0 = keep")
    candles_ttl_days: int = Field(0, ge=0, description="delete 10 s candles older than this")

    # Binance
    binance_ws_url: str = Field(
        "wss://stream.binance.com:9443",
        description="WebSocket base; /stream?streams=... is appended",
    )
    binance_rest_url: str = Field("https://api.binance.com", description="REST base (backfill)")
    binance_data_url: str = Field(
        "https://data.binance.vision", description="Binance's published trade and kline files"
    )
    binance_time_unit: Literal["MILLISECOND", "MICROSECOND"] = Field(
        "MILLISECOND",
        description="trade times of the live feed; MICROSECOND = Binance's timeUnit opt-in",
    )
    connect_timeout_seconds: float = Field(
        10.0, gt=0, description="how long to wait for Binance before falling back to replay"
    )
    feed_rotate_seconds: float = Field(
        23.5 * 3600, gt=0, description="switch to a fresh connection after this long (cut: 24 h)"
    )
    feed_silence_seconds: float = Field(
        60.0, gt=0, description="reconnect a socket silent this long (no trade, no ping)"
    )
    backfill_max_trades: int = Field(
        1_000_000, ge=0, description="larger gaps are reported lost instead of fetched over REST"
    )

    # Dashboard
    dash_host: str = Field(
        "127.0.0.1", description="dashboard address; non-loopback needs CRYPTOLAB_DASH_PASSWORD"
    )
    dash_port: int = Field(8050, ge=1, le=65535, description="dashboard port")
    dash_user: str = Field(
        "cryptolab", min_length=1, pattern=r"^[^:]+$", description="dashboard basic-auth user"
    )
    dash_password: SecretStr | None = Field(
        None, description="basic auth on every dashboard route when set (secret)"
    )
    dash_allow_no_auth: bool = Field(
        False, description="allow a non-loopback dash_host without a password (behind a proxy)"
    )

    @field_validator("binance_time_unit", mode="before")
    @classmethod
    def _upper_time_unit(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        symbols = tuple(str(s).strip().upper() for s in items if str(s).strip())
        if not symbols:
            raise ValueError("at least one symbol is required")
        if ALL_SYMBOLS in symbols and len(symbols) > 1:
            raise ValueError("'all' stands alone: use either all or a list of symbols")
        for symbol in symbols:
            if not symbol.isalnum():
                raise ValueError(f"symbol {symbol!r} must be letters and digits, like BTCUSDT")
        return symbols

    @field_validator("quote_asset", mode="after")
    @classmethod
    def _upper_quote(cls, value: str | None) -> str | None:
        return value.upper() if value else None

    @model_validator(mode="after")
    def _check_quote(self) -> Settings:
        if self.quote_asset and not self.all_symbols:
            raise ConfigError(
                f"CRYPTOLAB_QUOTE_ASSET={self.quote_asset} (--quote) picks from every symbol: "
                "it goes with CRYPTOLAB_SYMBOLS=all (--symbols all)"
            )
        return self

    @property
    def all_symbols(self) -> bool:
        """True for ``symbols=all``: the symbol list comes from exchangeInfo."""
        return self.symbols == (ALL_SYMBOLS,)

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        """Kafka security settings that do not go together fail here, saying what to set.
        (ConfigError is not a ValueError, so pydantic passes it through unchanged.)"""
        protocol = self.kafka_security_protocol
        sasl_set = [
            name
            for name, value in (
                ("CRYPTOLAB_KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
                ("CRYPTOLAB_KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                ("CRYPTOLAB_KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
            )
            if value is not None
        ]
        if protocol in SASL_PROTOCOLS:
            missing = [
                name
                for name in (
                    "CRYPTOLAB_KAFKA_SASL_MECHANISM",
                    "CRYPTOLAB_KAFKA_SASL_USERNAME",
                    "CRYPTOLAB_KAFKA_SASL_PASSWORD",
                )
                if name not in sasl_set
            ]
            if missing:
                raise ConfigError(
                    f"CRYPTOLAB_KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)} "
                    "(mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                )
        elif sasl_set:
            raise ConfigError(
                f"{', '.join(sasl_set)} set but CRYPTOLAB_KAFKA_SECURITY_PROTOCOL={protocol}: "
                "set it to SASL_SSL (or SASL_PLAINTEXT on a trusted network), or unset the SASL "
                "settings"
            )
        if self.kafka_ssl_cafile is not None:
            if protocol not in SSL_PROTOCOLS:
                raise ConfigError(
                    f"CRYPTOLAB_KAFKA_SSL_CAFILE is set but CRYPTOLAB_KAFKA_SECURITY_PROTOCOL="
                    f"{protocol}: use SSL or SASL_SSL"
                )
            if not self.kafka_ssl_cafile.is_file():
                raise ConfigError(
                    f"CRYPTOLAB_KAFKA_SSL_CAFILE={self.kafka_ssl_cafile} is not a file "
                    "(a PEM file with the CA certificate(s) of the brokers)"
                )
        if protocol != "PLAINTEXT" and not self.kafka_bootstrap:
            raise ConfigError(
                f"CRYPTOLAB_KAFKA_SECURITY_PROTOCOL={protocol} applies to an external cluster: "
                "set CRYPTOLAB_KAFKA_BOOTSTRAP=host:port (the local broker cryptolab starts is "
                "PLAINTEXT on 127.0.0.1)"
            )
        return self

    def __repr_args__(self) -> Any:
        """``repr``/``str`` with SecretStr masked (pydantic) and URL passwords masked too."""
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if isinstance(value, str) and "://" in value else value

    def secret_values(self) -> list[str]:
        """Every secret this configuration holds (for redaction; never print them)."""
        from urllib.parse import unquote, urlsplit

        values = [
            getattr(self, name).get_secret_value()
            for name in type(self).model_fields
            if isinstance(getattr(self, name), SecretStr)
        ]
        for name in ("clickhouse_url", "binance_ws_url", "binance_rest_url", "kafka_bootstrap"):
            url = getattr(self, name)
            password = urlsplit(url).password if url and "://" in url else None
            if password:
                values += [password, unquote(password)]
        return values

    @property
    def store_url(self) -> str:
        """The ClickHouse URL in force: explicit, or embedded chDB under ``data_dir``."""
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def checkpoint_dir(self) -> Path:
        return (self.data_dir / "checkpoints").resolve()

    @property
    def log_dir(self) -> Path:
        """The Spark driver's log files (the local broker's are under ``kafka_dir``)."""
        return (self.data_dir / "logs").resolve()

    @property
    def kafka_dir(self) -> Path:
        return (self.data_dir / "kafka").resolve()

    @property
    def jars_dir(self) -> Path:
        return self.cache_dir.expanduser().resolve() / "jars"


def _unknown_env_vars(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings: ``overrides`` (not None) > env vars > ``.env`` > defaults.

    Raises ConfigError naming every bad setting.
    """
    unknown = _unknown_env_vars(dict(os.environ))
    if unknown:
        known = ", ".join(ENV_PREFIX + n.upper() for n in Settings.model_fields)
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {known}")
    explicit = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**explicit)
    except ValidationError as exc:
        names = (".".join(str(p) for p in err["loc"]).upper() for err in exc.errors())
        problems = "; ".join(
            f"{name if name.startswith(ENV_PREFIX) else ENV_PREFIX + name}: {err['msg']}"
            for name, err in zip(names, exc.errors(), strict=True)
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    redact.register(*settings.secret_values())
    return settings


def require_writable_dir(path: Path, setting: str) -> Path:
    """Create ``path`` if needed and prove it takes a file; else a ConfigError naming the
    setting, the path and the reason (read-only, full, not a directory, permissions)."""
    probe = path / ".cryptolab-write-test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"{setting}={path} is not a writable directory ({exc.strerror or exc}): point "
            f"{setting} at a writable place with free space, or fix its permissions"
        ) from exc
    return path
