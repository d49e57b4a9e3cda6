"""Loss and duplicates after a soak, measured from three independent places:

- published: every record of the trades topic, read back from Kafka after the run (the broker
  restarted on the run's own log directory), checked against the tape (the ids published must
  be the tape's, in order, with no hole) and against the producer's own count;
- stored: every physical row of ``trades`` (no FINAL, so duplicates show), read in a separate
  process over the store's own client;
- lost = published ids not stored (per symbol, trades missing at the END counted apart),
  duplicates = physical rows minus distinct ids, unexpected = stored ids never published.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from cryptolab.bus.broker import LocalBroker
from cryptolab.bus.topics import end_offsets
from cryptolab.settings import load_settings

STORED = """
import json, sys
from cryptolab import load_settings
from cryptolab.store import open_store
store = open_store(load_settings(), create=False)
ids = {}
for symbol, trade_id in store.query_rows(f"SELECT symbol, trade_id FROM {store.table('trades')}"):
    ids.setdefault(symbol, []).append(int(trade_id))
with open(sys.argv[1], "w") as out:
    json.dump(ids, out)
"""
"""Every physical row of trades (no FINAL: a duplicate not merged yet is still two rows)."""


def stored_ids(env: dict[str, str], out: Path) -> dict[str, list[int]]:
    subprocess.run([sys.executable, "-c", STORED, str(out)], env=env, text=True,
                   capture_output=True, timeout=600, check=True)  # fmt: skip
    return {k: list(v) for k, v in json.loads(out.read_text()).items()}


def _read_topic(bootstrap: str, topic: str, timeout: float) -> dict[str, list[int]]:
    from kafka import KafkaConsumer, TopicPartition

    ends = end_offsets(bootstrap, topic)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             max_poll_records=10_000, fetch_max_bytes=64 << 20)  # fmt: skip
    parts = [TopicPartition(topic, p) for p in sorted(ends)]
    ids: dict[str, list[int]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    try:
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        while any(consumer.position(tp) < ends[tp.partition] for tp in parts):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} back within {timeout:.0f} s")
            for records in consumer.poll(timeout_ms=1_000).values():
                for record in records:
                    trade = orjson.loads(record.value)
                    ids[trade["symbol"]].append(int(trade["trade_id"]))
    finally:
        consumer.close()
    return dict(ids)


def published_ids(data: Path, port: int, topic: str, timeout: float = 600) -> dict[str, list[int]]:
    """Every trade record in Kafka: the run's broker restarted on its own log directory."""
    broker = LocalBroker(load_settings(data_dir=data, kafka_port=port))
    bootstrap = broker.start()
    try:
        return _read_topic(bootstrap, topic, timeout)
    finally:
        broker.stop()


def tape_ids(tape: Path) -> dict[str, list[int]]:
    """Trade ids of the tape per symbol, in tape order (stdlib json)."""
    ids: dict[str, list[int]] = defaultdict(list)
    with gzip.open(tape, "rt", encoding="utf-8") as handle:
        for line in handle:
            data = json.loads(line)["data"]
            if data.get("e") == "trade":
                ids[data["s"]].append(int(data["t"]))
    return dict(ids)


def producer_published(log: str) -> int | None:
    """The producer's own count, from `cryptolab up`'s last progress line."""
    counts = re.findall(r"progress .*\bpublished=(\d+)", log)
    return int(counts[-1]) if counts else None


def compare(
    tape: dict[str, list[int]], published: dict[str, list[int]], stored: dict[str, list[int]]
) -> dict[str, Any]:
    """Per symbol and in total: published, stored, lost (and lost at the end), duplicates,
    unexpected rows, and holes in what was published (tape ids skipped before the last one)."""
    per: dict[str, dict[str, Any]] = {}
    for symbol in sorted(set(tape) | set(published) | set(stored)):
        pub, rows = published.get(symbol, []), stored.get(symbol, [])
        pub_set, stored_set = set(pub), set(rows)
        last = max(pub, default=-1)
        holes = [i for i in tape.get(symbol, []) if i <= last and i not in pub_set]
        lost = sorted(pub_set - stored_set)
        stored_max = max(stored_set, default=-1)
        per[symbol] = {
            "published_records": len(pub),
            "published": len(pub_set),
            "stored": len(stored_set),
            "physical_rows": len(rows),
            "lost": len(lost),
            "lost_at_end": sum(1 for i in lost if i > stored_max),
            "lost_sample": lost[:5],
            "duplicates": len(rows) - len(stored_set),
            "unexpected": len(stored_set - pub_set),
            "publish_holes": len(holes),
        }
    totals = {
        key: sum(v[key] for v in per.values())
        for key in ("published_records", "published", "stored", "physical_rows", "lost",
                    "lost_at_end", "duplicates", "unexpected", "publish_holes")
    }  # fmt: skip
    return {"symbols": per, **totals}
