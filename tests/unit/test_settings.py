from pathlib import Path

import pytest

from cryptolab.errors import ConfigError
from cryptolab.settings import load_settings


def test_defaults() -> None:
    s = load_settings()
    assert s.symbols == ("BTCUSDT", "ETHUSDT", "BNBUSDT")
    assert s.dash_host == "127.0.0.1"
    assert s.kafka_bootstrap is None
    assert s.store_url == f"chdb://{(Path('data') / 'clickhouse').resolve()}"


def test_env_beats_default_and_argument_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOLAB_SYMBOLS", "solusdt, btcusdt")
    monkeypatch.setenv("CRYPTOLAB_DASH_PORT", "9000")
    assert load_settings().symbols == ("SOLUSDT", "BTCUSDT")
    assert load_settings().dash_port == 9000
    assert load_settings(dash_port=9100).dash_port == 9100
    assert load_settings(symbols=None).symbols == ("SOLUSDT", "BTCUSDT")


def test_dotenv_is_read_and_env_beats_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CRYPTOLAB_TOPIC=from_dotenv\nCRYPTOLAB_DASH_PORT=8111\n")
    monkeypatch.setenv("CRYPTOLAB_DASH_PORT", "8222")
    s = load_settings()
    assert s.topic == "from_dotenv" and s.dash_port == 8222


def test_mistyped_env_var_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOLAB_KAFKA_BOOTSTRAPS", "x:9092")
    with pytest.raises(ConfigError, match="CRYPTOLAB_KAFKA_BOOTSTRAPS"):
        load_settings()


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOLAB_DASH_PORT", "eighty")
    with pytest.raises(ConfigError, match="DASH_PORT"):
        load_settings()


@pytest.mark.parametrize("symbols", ["", "BTC-USDT", "BTCUSDT,,x y"])
def test_bad_symbols_are_rejected(symbols: str) -> None:
    with pytest.raises(ConfigError, match="SYMBOLS"):
        load_settings(symbols=symbols)


def test_database_name_must_be_an_identifier() -> None:
    with pytest.raises(ConfigError, match="CLICKHOUSE_DATABASE"):
        load_settings(clickhouse_database="crypto; DROP TABLE x")


def test_password_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOLAB_CLICKHOUSE_PASSWORD", "hunter2")
    s = load_settings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)
    assert s.clickhouse_password is not None
    assert s.clickhouse_password.get_secret_value() == "hunter2"


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(Exception, match="frozen"):
        s.topic = "x"
