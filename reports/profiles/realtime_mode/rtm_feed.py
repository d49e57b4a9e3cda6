"""Broker + paced live feed for the real-time-mode experiment (runs in the project venv)."""
import sys, tempfile, time, uuid, threading
from pathlib import Path
from cryptolab.bus.broker import LocalBroker
from cryptolab.bus.producer import TradeProducer
from cryptolab.bus.topics import ensure_topics
from cryptolab.feeds.synth import synth_frames
from cryptolab.feeds.tape import replay
from cryptolab.settings import load_settings
seconds = float(sys.argv[1])
with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
    broker = LocalBroker(load_settings(data_dir=Path(tmp)))
    b = broker.start()
    settings = load_settings(topic="rtm_trades", dlq_topic="rtm_dlq")
    ensure_topics(settings, b)
    open("/tmp/rtm_bootstrap", "w").write(b)
    print("bootstrap", b, flush=True)
    while not Path("/tmp/rtm_ready").exists():
        time.sleep(0.5)
    p = TradeProducer(settings, b)
    start_ms = int(time.time() * 1000) + 200
    for frame in replay(synth_frames(["BTCUSDT", "ETHUSDT", "BNBUSDT"], seconds, 46.0, 5, start_ms), 1.0):
        p.publish(frame)
    p.flush(); p.close()
    print("feed done", flush=True)
    time.sleep(15)
    broker.stop()
