"""Write the notebooks' sample tape: cryptolab/data/sample_market.jsonl.gz (deterministic).

    .venv/bin/python scripts/make_sample_market.py [--out FILE]

30 minutes of three symbols from the synthetic generator (BTCUSDT ~6 trades/s, ETHUSDT ~4,
BNBUSDT ~2, starting 2026-11-01T00:00:00Z), with prices that move like a market (driven by the
taker flow, a volatility burst from minute 18 to 21) and the flaws a real capture has, so that
the notebooks' data-quality sections have something to find:

- trade-id gaps: 40 consecutive BTCUSDT trades missing (a dropped connection around 00:12),
  and two single ETHUSDT trades missing;
- late deliveries: 24 frames delivered 7-20 s after their trade time (beyond the 5 s watermark);
- duplicates: 5 frames delivered twice (a reconnect overlap);
- bad lines: 4 frames no parser accepts (not JSON, negative quantity, a kline event, a string id).

Running it again writes the same bytes (gzip mtime 0).
"""

from __future__ import annotations

import argparse
import gzip
import io
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson

from cryptolab.feeds.tapes.synth import DEFAULT_START_MS, synth_frames

OUT = Path(__file__).resolve().parents[1] / "cryptolab" / "data" / "sample_market.jsonl.gz"
SECONDS = 1800
RATES = {"BTCUSDT": 6.0, "ETHUSDT": 4.0, "BNBUSDT": 2.0}
SEED = 2026
SIGMA = {"BTCUSDT": 8.0, "ETHUSDT": 0.4, "BNBUSDT": 0.06}
"""Price noise per second (about 2.5% a day, like the real pairs)."""
BAD_LINES = [
    "{not json at all",
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":0,"s":"BTCUSDT","t":1,'
    '"p":"97000.00000000","q":"-0.50000000","T":0,"m":true,"M":true}}',
    '{"stream":"ethusdt@kline_1m","data":{"e":"kline","E":0,"s":"ETHUSDT"}}',
    '{"stream":"bnbusdt@trade","data":{"e":"trade","E":0,"s":"BNBUSDT","t":"12x",'
    '"p":"650.00000000","q":"1.00000000","T":0,"m":false,"M":true}}',
]


def _symbol_frames(symbol: str, rate: float, seed: int) -> list[dict]:
    return [orjson.loads(f) for f in synth_frames([symbol], SECONDS, rate, seed, DEFAULT_START_MS)]


def _add_market_moves(frames: list[dict], sigma: float, rng: np.random.Generator) -> None:
    """Move prices like a market: each second the price shifts by the second's taker flow
    (buys push it up) plus noise of ``sigma`` per second, three times stronger between
    minutes 18 and 21; kept on the 0.01 tick."""
    seconds = [(f["data"]["T"] - DEFAULT_START_MS) // 1000 for f in frames]
    qty = np.array([float(f["data"]["q"]) for f in frames])
    side = np.array([-1.0 if f["data"]["m"] else 1.0 for f in frames])
    flow = np.zeros(SECONDS + 1)
    np.add.at(flow, seconds, qty * side)
    flow /= max(float(np.abs(flow).std()), 1e-12)
    burst = np.where((np.arange(SECONDS + 1) >= 1080) & (np.arange(SECONDS + 1) < 1260), 3.0, 1.0)
    shift = np.cumsum(sigma * (0.6 * flow + 0.8 * burst * rng.standard_normal(SECONDS + 1)))
    for frame, second in zip(frames, seconds, strict=True):
        price = Decimal(frame["data"]["p"]) + Decimal(str(round(float(shift[second]), 2)))
        frame["data"]["p"] = f"{max(price, Decimal('0.01')):.8f}"


def build() -> list[str]:
    rng = np.random.default_rng(SEED)
    per_symbol = {s: _symbol_frames(s, r, SEED + i) for i, (s, r) in enumerate(RATES.items())}
    for symbol, frames in per_symbol.items():
        _add_market_moves(frames, SIGMA[symbol], rng)
    # gaps: trades that never reach us
    btc = per_symbol["BTCUSDT"]
    cut = int(len(btc) * 0.4)
    del btc[cut : cut + 40]
    eth = per_symbol["ETHUSDT"]
    for index in (3000, 1000):
        del eth[index]
    # late deliveries: arrival 7-20 s after the trade
    for frames in per_symbol.values():
        for index in rng.choice(np.arange(100, len(frames) - 100), size=8, replace=False):
            data = frames[int(index)]["data"]
            data["E"] = data["T"] + int(rng.integers(7_000, 20_001))
    entries: list[tuple[int, int, str]] = []
    for frames in per_symbol.values():
        for frame in frames:
            entries.append((frame["data"]["E"], len(entries), orjson.dumps(frame).decode()))
    entries.sort()
    # duplicates: the same frame again right after itself
    picked = rng.choice(np.arange(500, len(entries) - 500), size=5, replace=False)
    for index in sorted(int(i) for i in picked)[::-1]:
        entries.insert(index + 1, entries[index])
    lines = [text for _, _, text in entries]
    # bad lines, spread over the tape
    for i, bad in enumerate(BAD_LINES):
        lines.insert((i + 1) * len(lines) // (len(BAD_LINES) + 1), bad)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    lines = build()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as handle:
        handle.write(("\n".join(lines) + "\n").encode())
    args.out.write_bytes(buffer.getvalue())
    print(f"wrote {len(lines)} lines ({len(buffer.getvalue())} bytes) to {args.out}")


if __name__ == "__main__":
    main()
