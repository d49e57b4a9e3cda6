"""A process that owns an embedded store and shares it, as `up` does, without Kafka or Spark:

    python -m tests.integration.share_owner <data_dir> <tape>

Loads the tape (batch), starts the share (settings from the environment), prints
``READY <url>``, and serves until SIGTERM (a clean stop) or SIGKILL (a crash).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from cryptolab.batch.load import load_tape
from cryptolab.settings import load_settings
from cryptolab.store import open_store
from cryptolab.store.share import StoreShare


def main(data_dir: str, tape: str) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = load_settings(data_dir=Path(data_dir))
    store = open_store(settings)
    load_tape(store, Path(tape))
    share = StoreShare.start(settings)
    assert share is not None, "CRYPTOLAB_STORE_SHARE_PORT must not be 0 here"
    print(f"READY {share.url}", flush=True)
    try:
        stop.wait()
    finally:
        share.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
