"""Sources of raw Binance frames: the live WebSocket and recorded/synthetic tapes."""
