"""The REST side of the local server: ``historicalTrades``, ``exchangeInfo``, ``klines`` and
``ping``, each weighed against Binance's per-minute request weight (``429`` + ``Retry-After``
past it).
Times in milliseconds, or microseconds with the header ``X-MBX-TIME-UNIT: MICROSECOND``."""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Protocol

import orjson
from aiohttp import web

from cryptolab.feeds.server.faults import Faults, ServerStats
from cryptolab.feeds.server.market import Market
from cryptolab.feeds.server.tapes import KLINE_MS, MICROSECOND, MILLISECOND, ServerTape, klines


class Served(Protocol):
    """What the REST side reads of the server (a ReplayServer)."""

    tape: ServerTape
    market: Market
    faults: Faults
    stats: ServerStats
    reached_ms: int | None


WEIGHT = 25
EXCHANGE_INFO_WEIGHT = 20


class RestApi:
    def __init__(self, server: Served) -> None:
        self.server = server
        self._weights: deque[tuple[float, int]] = deque()

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    def _weigh(self, weight: int) -> web.Response | dict[str, str]:
        """Spend ``weight`` of the per-minute budget: the headers to answer with, or a 429."""
        self.server.stats.rest_requests += 1
        now = time.monotonic()
        while self._weights and self._weights[0][0] <= now - 60.0:
            self._weights.popleft()
        used = sum(w for _, w in self._weights)
        if (
            self.server.stats.rest_requests <= self.server.faults.rest_fail_first
            or used + weight > self.server.faults.weight_limit
        ):
            self.server.stats.rest_throttled += 1
            headers = {"Retry-After": str(self.server.faults.retry_after)}
            return json_response({"code": -1003, "msg": "Too many requests."}, 429, headers)
        self._weights.append((now, weight))
        return {"X-MBX-USED-WEIGHT-1M": str(used + weight)}

    async def exchange_info(self, request: web.Request) -> web.Response:
        self.server.stats.exchange_info_requests += 1
        headers = self._weigh(EXCHANGE_INFO_WEIGHT)
        if isinstance(headers, web.Response):
            return headers
        only = None
        if "symbols" in request.query or "symbol" in request.query:
            try:
                raw = request.query.get("symbols") or f'["{request.query.get("symbol", "")}"]'
                only = [str(s).upper() for s in orjson.loads(raw)]
            except (orjson.JSONDecodeError, TypeError):
                return json_response(
                    {"code": -1100, "msg": "Illegal characters in parameter."}, 400
                )
            unknown = [s for s in only if s not in self.server.market.initial]
            if unknown:
                return json_response({"code": -1121, "msg": "Invalid symbol."}, 400, headers)
        return json_response(
            self.server.market.exchange_info(self.server.reached_ms, only), headers=headers
        )

    async def historical_trades(self, request: web.Request) -> web.Response:
        headers = self._weigh(WEIGHT)
        if isinstance(headers, web.Response):
            return headers
        symbol = request.query.get("symbol", "").upper()
        try:
            limit = int(request.query.get("limit", "500"))
            from_id = request.query.get("fromId")
            start = None if from_id is None else int(from_id)
        except ValueError:
            return json_response(
                {"code": -1100, "msg": "Illegal characters in parameter."}, 400, headers
            )
        if symbol not in self.server.tape.symbols:
            return json_response({"code": -1121, "msg": "Invalid symbol."}, 400, headers)
        if not 1 <= limit <= 1000:
            return json_response({"code": -1100, "msg": "limit must be 1..1000"}, 400, headers)
        unit = time_unit(request.headers.get("X-MBX-TIME-UNIT"))
        if unit is None:
            return json_response({"code": -1100, "msg": "Invalid time unit."}, 400, headers)
        return json_response(self.server.tape.history(symbol, start, limit, unit), headers=headers)

    async def klines(self, request: web.Request) -> web.Response:
        """``/api/v3/klines``: klines of the trades reached so far (Binance's row format)."""
        symbol = request.query.get("symbol", "").upper()
        width = KLINE_MS.get(request.query.get("interval", ""))
        unit = time_unit(request.headers.get("X-MBX-TIME-UNIT"))
        try:
            limit = int(request.query.get("limit", "500"))
            start = int(request.query.get("startTime", "0"))
            end = int(request.query.get("endTime", str(2**62)))
        except ValueError:
            return json_response({"code": -1100, "msg": "Illegal characters in parameter."}, 400)
        if symbol not in self.server.tape.symbols:
            return json_response({"code": -1121, "msg": "Invalid symbol."}, 400)
        if width is None or unit is None or not 1 <= limit <= 1000:
            return json_response(
                {"code": -1120, "msg": "Invalid interval, time unit or limit."}, 400
            )
        rows = klines(self.server.tape.reached(symbol), width, start, end, unit)
        return json_response(rows[:limit])


def time_unit(value: str | None) -> str | None:
    """Binance's ``timeUnit``: absent = milliseconds; MILLISECOND or MICROSECOND in any case."""
    if value is None:
        return MILLISECOND
    unit = value.strip().upper()
    return unit if unit in (MILLISECOND, MICROSECOND) else None


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )
