"""Small, dependency-free helpers over raw Binance frames, shared by the live client, the
backfill, the local replay server and the tape tools.

A trade on the combined stream::

    {"stream":"btcusdt@trade","data":{"e":"trade","E":1732867200123,"s":"BTCUSDT",
     "t":4242424242,"p":"97000.01000000","q":"0.00150000","T":1732867200120,"m":true,"M":true}}

The same trade from REST ``GET /api/v3/historicalTrades`` (no event time there)::

    {"id":4242424242,"price":"97000.01000000","qty":"0.00150000","quoteQty":"145.50001500",
     "time":1732867200120,"isBuyerMaker":true,"isBestMatch":true}
"""

from __future__ import annotations

from typing import Any

import orjson

SERVER_SHUTDOWN = "serverShutdown"


BACKFILL_TAG = "backfill"
"""Top-level key marking a trade frame rebuilt from REST ``historicalTrades`` (never received on
the WebSocket): ``{"stream":..,"data":{..},"backfill":true}``. Parsers ignore it; the producer
turns it into the Kafka header ``cryptolab-source: rest-backfill``; tapes keep it."""
_BACKFILL_END = ',"backfill":true}'


def is_backfilled(frame: str | bytes) -> bool:
    """True for a frame made by :func:`rest_trade_frame`."""
    end = frame[-len(_BACKFILL_END) :]
    return (end.decode("utf-8", "replace") if isinstance(end, bytes) else end) == _BACKFILL_END


def _payload(message: Any) -> Any:
    if not isinstance(message, dict):
        return None
    return message.get("data", message) if "stream" in message else message


def event_of(frame: str | bytes) -> dict[str, Any] | None:
    """The event object of a frame (the combined stream's ``data``, or the bare event), or None
    when the frame is not a JSON object."""
    try:
        data = _payload(orjson.loads(frame))
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def trade_key(frame: str | bytes) -> tuple[str, int] | None:
    """``(symbol, trade id)`` of a trade frame, or None for anything else (bad or other event)."""
    data = event_of(frame)
    if data is None or data.get("e") != "trade":
        return None
    symbol, trade_id = data.get("s"), _int(data.get("t"))
    return (symbol, trade_id) if isinstance(symbol, str) and trade_id is not None else None


def symbol_of(frame: str | bytes) -> str | None:
    """The ``s`` of a frame's event, or None."""
    data = event_of(frame)
    symbol = data.get("s") if data is not None else None
    return symbol if isinstance(symbol, str) else None


def event_time_of(frame: str | bytes) -> int | None:
    """The ``E`` (ms) of a frame's event, or None (bad frames are not paced)."""
    data = event_of(frame)
    return _int(data.get("E")) if data is not None else None


def is_server_shutdown(frame: str) -> bool:
    """True for Binance's ``serverShutdown`` event, bare (``{"e":"serverShutdown","E":..}``),
    wrapped like a combined-stream event (``{"data":{...}}``) or like the WebSocket API sends it
    (``{"event":{...}}``)."""
    if SERVER_SHUTDOWN not in frame:
        return False
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(message, dict):
        return False
    for data in (message, message.get("data"), message.get("event")):
        if isinstance(data, dict) and data.get("e") == SERVER_SHUTDOWN:
            return True
    return False


def control_reply(frame: str) -> tuple[int, str | None] | None:
    """``(id, None)`` for the answer to a SUBSCRIBE/UNSUBSCRIBE request, ``(id, error)`` for a
    refusal, None for anything else (trades start with ``{"stream"``: not even parsed)::

        {"result":null,"id":7}
        {"error":{"code":2,"msg":"Invalid request: too many streams"},"id":7}
        {"code":2,"msg":"Invalid request","id":7}
    """
    if frame.startswith('{"stream"') or '"id"' not in frame:
        return None
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or "stream" in message or "data" in message:
        return None
    request_id = _int(message.get("id"))
    if request_id is None:
        return None
    if "result" in message and "error" not in message:
        return request_id, None
    error = message.get("error", message)
    if isinstance(error, dict) and ("msg" in error or "code" in error):
        return request_id, f"code={error.get('code')} {error.get('msg', '')}".strip()
    return None


def server_shutdown_frame(event_time: int) -> str:
    return orjson.dumps({"e": SERVER_SHUTDOWN, "E": event_time}).decode()


def trade_frame(
    symbol: str,
    trade_id: int,
    price: str,
    qty: str,
    trade_time: int,
    is_buyer_maker: bool,
    is_best_match: bool,
    event_time: int | None = None,
    backfilled: bool = False,
) -> str:
    """A combined-stream trade frame; ``event_time`` defaults to the trade time."""
    data = {
        "e": "trade",
        "E": trade_time if event_time is None else event_time,
        "s": symbol,
        "t": trade_id,
        "p": price,
        "q": qty,
        "T": trade_time,
        "m": is_buyer_maker,
        "M": is_best_match,
    }
    message: dict[str, Any] = {"stream": f"{symbol.lower()}@trade", "data": data}
    if backfilled:
        message[BACKFILL_TAG] = True
    return orjson.dumps(message).decode()


def rest_trade_frame(symbol: str, item: dict[str, Any]) -> tuple[int, str]:
    """One ``historicalTrades`` item -> ``(trade id, tagged frame)``; ``E`` is the trade time.

    Raises KeyError/TypeError on an item without the fields above."""
    trade_id = item["id"]
    if isinstance(trade_id, bool) or not isinstance(trade_id, int):
        raise TypeError(f"trade id must be an integer, got {trade_id!r}")
    frame = trade_frame(
        symbol,
        trade_id,
        item["price"],
        item["qty"],
        item["time"],
        item["isBuyerMaker"],
        item.get("isBestMatch", True),
        backfilled=True,
    )
    return trade_id, frame
