"""The live Binance client: sharded WebSocket connections, gap detection and REST backfill."""
