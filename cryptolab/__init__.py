"""cryptolab: a Jupyter-first workbench for real-time crypto trades.

Binance WebSocket -> producer -> Kafka -> Spark Structured Streaming -> ClickHouse -> Dash.
"""

from cryptolab.errors import CryptolabError
from cryptolab.settings import Settings, load_settings

__all__ = ["CryptolabError", "Settings", "load_settings"]
__version__ = "0.1.0"
