"""cryptolab: a Jupyter-first workbench for real-time crypto trades.

Binance WebSocket -> producer -> Kafka -> Spark Structured Streaming -> ClickHouse -> Dash.
"""

from importlib.metadata import version

from cryptolab.errors import CryptolabError
from cryptolab.settings import Settings, load_settings

__all__ = ["CryptolabError", "Settings", "load_settings"]
__version__ = version("cryptolab")
