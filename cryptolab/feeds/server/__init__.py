"""A local server that speaks Binance's WebSocket and REST protocols, with injectable faults
(tests, demos, and users without internet)."""
