"""Command line: parse arguments, then call library functions. No pipeline logic here."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptolab.errors import CryptolabError
from cryptolab.settings import Settings, load_settings

log = logging.getLogger("cryptolab")


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed must be a number or 'max', got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be positive")
    return value


def _iso(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text[:40]!r} (e.g. 2026-11-01T00:00:00Z)"
        ) from None


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text[:40]!r}")
    return value


def _withhold(text: str) -> Any:
    from cryptolab.feeds.server import Withhold

    try:
        return Withhold.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


MAX_LAST = 1_000_000


def _symbol(text: str) -> str:
    """A symbol as given on the command line: letters and digits only, like BTCUSDT."""
    symbol = text.strip().upper()
    if not symbol.isascii() or not symbol.isalnum() or len(symbol) > 32:
        raise CryptolabError(
            f"--symbol must be letters and digits (at most 32), like BTCUSDT; got {text[:40]!r}"
        )
    return symbol


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return load_settings(data_dir=getattr(args, "data_dir", None), **extra)


def _until_interrupted() -> None:
    """Block until Ctrl-C."""
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass


# -- commands -----------------------------------------------------------------------------------
def _source(args: argparse.Namespace, settings: Settings) -> Any:
    from cryptolab.feeds.source import live_source, replay_source, sample_tape

    if args.source == "replay":
        return replay_source(args.tape or sample_tape(), args.speed)
    if args.tape:
        raise CryptolabError("--tape goes with --source replay")
    return live_source(settings)


def _sigterm_interrupts() -> None:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))


def cmd_up(args: argparse.Namespace) -> int:
    from cryptolab.stack import Stack

    settings = _settings(args, symbols=args.symbols, dash_host=args.host, dash_port=args.port)
    if args.until_drained and args.source != "replay":
        raise CryptolabError("--until-drained needs --source replay (a live feed never ends)")
    stack = Stack(settings, _source(args, settings))
    _sigterm_interrupts()
    try:
        stack.start(dash=not args.no_dash)
        if stack.dashboard is not None:
            print(f"dashboard: {stack.dashboard.url}", flush=True)
        stack.run(seconds=args.seconds, until_drained=args.until_drained)
    except KeyboardInterrupt:
        log.info("interrupted, stopping")
    finally:
        stack.stop()
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from cryptolab.stages import run_producer

    settings = _settings(args, symbols=args.symbols)
    _sigterm_interrupts()
    try:
        stats = run_producer(settings, _source(args, settings))
    except KeyboardInterrupt:
        log.info("interrupted, producer stopped")
        return 0
    print(f"published frames={stats.frames} trades={stats.trades} dlq={stats.dlq}", flush=True)
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from cryptolab.stages import run_streaming

    settings = _settings(args)
    _sigterm_interrupts()
    try:
        run_streaming(settings, until_caught_up=args.until_caught_up)
    except KeyboardInterrupt:
        log.info("interrupted, streaming stopped")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from cryptolab.doctor import FAIL, render, run_checks

    checks = run_checks(_settings(args))
    sys.stdout.write(render(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


def cmd_query(args: argparse.Namespace) -> int:
    from cryptolab.store import open_store, queries
    from cryptolab.store.render import render_candles

    symbol = _symbol(args.symbol)
    if args.interval not in queries.INTERVALS:
        raise CryptolabError(
            f"unknown interval {args.interval[:40]!r} (--interval); "
            f"use one of {', '.join(queries.INTERVALS)}"
        )
    if args.last is not None and not 1 <= args.last <= MAX_LAST:
        raise CryptolabError(f"--last must be between 1 and {MAX_LAST}")
    settings = _settings(args)
    store = open_store(settings)
    try:
        frame = queries.candles(store, symbol, args.interval, args.start, args.end, last=args.last)
    finally:
        store.close()
    sys.stdout.write(render_candles(frame, args.format))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from cryptolab.store import open_store
    from cryptolab.store.reconcile import reconcile

    settings = _settings(args)
    store = open_store(settings)
    try:
        since = args.since or datetime(1970, 1, 1, tzinfo=UTC)
        report = reconcile(store, since, args.until)
    finally:
        store.close()
    print(report.describe())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from cryptolab.report import render_report

    settings = _settings(args)
    start, end = (t.replace(tzinfo=UTC) if t.tzinfo is None else t for t in (args.start, args.end))
    if start >= end:
        raise CryptolabError("--start must be before --end")
    parameters = {
        "symbol": _symbol(args.symbol),
        "start": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "end": end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "interval": args.interval,
        "tape": str(args.tape) if args.tape else None,
        "data_dir": str(settings.data_dir.resolve()),
    }
    files = render_report(
        args.notebook,
        parameters,
        args.out,
        naming=("symbol", "start", "end", "interval"),
        cwd=Path.cwd(),
        progress=sys.stderr.isatty(),
    )
    print(f"notebook: {files.notebook}\nhtml:     {files.html}  ({files.seconds:.1f} s)")
    return 0


def cmd_kafka(args: argparse.Namespace) -> int:
    from cryptolab.bus.broker import LocalBroker

    settings = _settings(args)
    if settings.kafka_bootstrap:
        print(
            f"CRYPTOLAB_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} is set: "
            "no local broker to manage"
        )
        return 0
    broker = LocalBroker(settings)
    if args.action == "start":
        print(f"kafka running at {broker.start()}")
    elif args.action == "stop":
        print("kafka stopped" if broker.stop() else "kafka was not running")
    else:
        status = broker.status()
        print(f"kafka {status.describe()}")
        return 0 if status.running else 3
    return 0


def cmd_tape_synth(args: argparse.Namespace) -> int:
    from cryptolab.feeds.synth import DEFAULT_START_MS, synth_frames
    from cryptolab.feeds.tape import write_frames

    start_ms = int(args.start.timestamp() * 1000) if args.start else DEFAULT_START_MS
    symbols = load_settings(symbols=args.symbols).symbols
    frames = synth_frames(symbols, args.seconds, args.rate, args.seed, start_ms, args.jitter_ms)
    count = write_frames(args.out, frames)
    print(f"wrote {count} frames to {args.out}")
    return 0


def cmd_tape_import(args: argparse.Namespace) -> int:
    from cryptolab.feeds.vision import import_tape

    count = import_tape(args.file, args.symbol, args.out)
    print(f"wrote {count} trades to {args.out}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    import threading

    from cryptolab.feeds.record import record

    settings = _settings(args, symbols=args.symbols)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"recording {','.join(settings.symbols)} to {args.out} (Ctrl-C stops)", flush=True)
    result = record(settings, args.out, args.seconds, stop)
    fields = " ".join(f"{k}={v}" for k, v in result.counters.items())
    print(f"wrote {result.frames} frames to {args.out} ({fields})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:

    from cryptolab.feeds.server import Faults, ReplayServer

    faults = Faults(
        drop_every=args.drop_every,
        shutdown_every=args.shutdown_every,
        shutdown_grace=args.shutdown_grace,
        stall_every=args.stall_every,
        withhold=tuple(args.withhold),
        max_connection_age=args.max_connection_age,
        ping_interval=args.ping_interval,
        pong_timeout=args.pong_timeout,
        rest_fail_first=args.rest_fail_first,
    )
    server = ReplayServer.from_tape(
        args.tape,
        speed=args.speed,
        faults=faults,
        host=args.host,
        port=args.port,
        start_now=args.start_now,
    ).start()
    print(f"serving {args.tape} on {server.ws_url} (Ctrl-C stops)", flush=True)
    print(f"CRYPTOLAB_BINANCE_WS_URL={server.ws_url}", flush=True)
    print(f"CRYPTOLAB_BINANCE_REST_URL={server.rest_url}", flush=True)
    try:
        _until_interrupted()
    finally:
        server.stop()
        log.info("server stats %s", server.stats)
    return 0


def cmd_jars(args: argparse.Namespace) -> int:
    from cryptolab.bus.broker import broker_bundle
    from cryptolab.jvm import resolve
    from cryptolab.streaming.session import connector_bundle

    settings = _settings(args)
    for bundle in (broker_bundle(settings.kafka_version), connector_bundle()):
        cached = bundle.is_cached(settings.jars_dir)
        if not cached:
            print(f"resolving {bundle.name} from Maven Central (first time only)...", flush=True)
        jars = resolve(bundle, settings.jars_dir)
        print(
            f"{bundle.name}: {len(jars)} jars in {bundle.folder(settings.jars_dir)}"
            + (" (cached)" if cached else "")
        )
    return 0


def cmd_dash(args: argparse.Namespace) -> int:

    from cryptolab.dashboard.auth import require_safe_binding
    from cryptolab.dashboard.server import DashServer
    from cryptolab.store import open_store

    settings = _settings(args, dash_host=args.host, dash_port=args.port)
    require_safe_binding(settings)  # before opening anything
    store = open_store(settings)
    server = DashServer.start(store, settings)
    print(f"dashboard: {server.url}", flush=True)
    try:
        _until_interrupted()
    finally:
        server.stop()
        store.close()
    return 0


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cryptolab", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    parser.add_argument("--data-dir", type=Path, help="state directory (CRYPTOLAB_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole pipeline (feed, Kafka, Spark, store, dashboard)")
    up.add_argument("--source", choices=("binance", "replay"), default="binance")
    up.add_argument("--tape", type=Path, help="tape to replay (default: the bundled sample)")
    up.add_argument("--speed", type=_speed, default=1.0, help="replay speed factor or 'max'")
    up.add_argument("--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    up.add_argument(
        "--until-drained",
        action="store_true",
        help="replay only: exit once every trade is in the store and candles are final",
    )
    up.add_argument("--seconds", type=_positive_float, help="run this long, drain, then exit")
    up.add_argument("--no-dash", action="store_true", help="do not serve the dashboard")
    up.add_argument("--host", help="dashboard host (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="dashboard port (default 8050)")
    up.set_defaults(func=cmd_up)

    produce = sub.add_parser("produce", help="the feed alone: Binance or a tape -> Kafka")
    produce.add_argument("--source", choices=("binance", "replay"), default="binance")
    produce.add_argument("--tape", type=Path, help="tape to replay (default: the bundled sample)")
    produce.add_argument("--speed", type=_speed, default=1.0, help="replay speed factor or 'max'")
    produce.add_argument("--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    produce.set_defaults(func=cmd_produce)

    stream = sub.add_parser("stream", help="the streaming job alone: Kafka -> Spark -> store")
    stream.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit once everything in the topic at start is in the store",
    )
    stream.set_defaults(func=cmd_stream)

    doctor = sub.add_parser("doctor", help="check Java, jars, ports, Kafka, ClickHouse, Spark")
    doctor.set_defaults(func=cmd_doctor)

    query = sub.add_parser("query", help="read from the store")
    qsub = query.add_subparsers(dest="what", required=True)
    qc = qsub.add_parser("candles", help="candles of one symbol")
    qc.add_argument("--symbol", required=True)
    qc.add_argument("--interval", default="10s", help="10s, 1m, 5m, 15m, 1h or 1d")
    qc.add_argument("--start", type=_iso)
    qc.add_argument("--end", type=_iso)
    qc.add_argument("--last", type=_count, help="only the newest N candles")
    qc.add_argument("--format", choices=("csv", "json", "table"), default="table")
    qc.set_defaults(func=cmd_query)

    rec = sub.add_parser("reconcile", help="re-derive 10 s candles from raw trades, report changes")
    rec.add_argument("--since", type=_iso, help="first window (default: all)")
    rec.add_argument("--until", type=_iso, help="end of the range (default: now and later)")
    rec.set_defaults(func=cmd_reconcile)

    rep = sub.add_parser(
        "report", help="run a notebook headless (papermill) into an executed notebook + HTML"
    )
    rep.add_argument("--notebook", default="03_market_report", help="name in notebooks/ or path")
    rep.add_argument("--symbol", required=True)
    rep.add_argument("--start", type=_iso, required=True, help="ISO 8601, e.g. 2026-11-01T00:00Z")
    rep.add_argument("--end", type=_iso, required=True)
    rep.add_argument("--interval", default="1m", choices=("10s", "1m", "5m", "15m", "1h", "1d"))
    rep.add_argument(
        "--tape", help="report on this tape ('sample' = the bundled one) instead of the store"
    )
    rep.add_argument("--out", type=Path, default=Path("reports"), help="output directory")
    rep.set_defaults(func=cmd_report)

    kafka = sub.add_parser("kafka", help="manage the local Kafka broker")
    kafka.add_argument("action", choices=("start", "stop", "status"))
    kafka.set_defaults(func=cmd_kafka)

    tape = sub.add_parser("tape", help="work with tapes")
    tsub = tape.add_subparsers(dest="tape_command", required=True)
    synth = tsub.add_parser("synth", help="write a realistic synthetic tape")
    synth.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    synth.add_argument("--seconds", type=_positive_float, default=600)
    synth.add_argument("--rate", type=_positive_float, default=50, help="avg trades/s per symbol")
    synth.add_argument("--seed", type=int, default=7)
    synth.add_argument("--start", type=_iso, help="time of the first trade (default 2026-11-01)")
    synth.add_argument(
        "--jitter-ms",
        type=int,
        default=0,
        help="deliver trades up to this late, out of trade-time order",
    )
    synth.add_argument("--out", type=Path, required=True)
    synth.set_defaults(func=cmd_tape_synth)
    imp = tsub.add_parser(
        "import", help="convert a data.binance.vision spot trades file (.csv or .zip) to a tape"
    )
    imp.add_argument("file", type=Path)
    imp.add_argument("--symbol", required=True, help="the file's symbol, e.g. BTCUSDT")
    imp.add_argument("--out", type=Path, required=True)
    imp.set_defaults(func=cmd_tape_import)

    rec = sub.add_parser("record", help="record the live feed to a tape")
    rec.add_argument("--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    rec.add_argument("--out", type=Path, required=True, help="tape file (.jsonl or .jsonl.gz)")
    rec.add_argument(
        "--seconds", type=_positive_float, help="stop after this long (default: Ctrl-C)"
    )
    rec.set_defaults(func=cmd_record)

    serve = sub.add_parser("serve", help="serve a tape over Binance's protocol (WS + REST)")
    serve.add_argument("--tape", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9443, help="0 = any free port")
    serve.add_argument("--speed", type=_speed, default=1.0, help="replay speed factor or 'max'")
    serve.add_argument("--start-now", action="store_true", help="play without waiting for a client")
    faults = serve.add_argument_group("faults to inject")
    faults.add_argument("--drop-every", type=_positive_float, help="cut every connection every N s")
    faults.add_argument(
        "--shutdown-every", type=_positive_float, help="send serverShutdown every N s"
    )
    faults.add_argument(
        "--shutdown-grace", type=_positive_float, default=1.0, help="then close after N s"
    )
    faults.add_argument(
        "--stall-every", type=_positive_float, help="go silent on open connections every N s"
    )
    faults.add_argument(
        "--withhold",
        type=_withhold,
        action="append",
        default=[],
        metavar="SYMBOL:FROM-TO",
        help="never stream these trade ids (REST still has them); repeatable",
    )
    faults.add_argument(
        "--max-connection-age",
        type=_positive_float,
        default=86400.0,
        help="close connections this old (Binance: 24 h)",
    )
    faults.add_argument("--ping-interval", type=_positive_float, default=20.0)
    faults.add_argument(
        "--pong-timeout",
        type=_positive_float,
        default=60.0,
        help="close a client that has not answered a ping for this long",
    )
    faults.add_argument(
        "--rest-fail-first", type=int, default=0, help="answer the first N REST calls with 429"
    )
    serve.set_defaults(func=cmd_serve)

    jars = sub.add_parser("jars", help="JVM jars (Kafka broker, Spark Kafka connector)")
    jars.add_argument("action", choices=("fetch",))
    jars.set_defaults(func=cmd_jars)

    dash_cmd = sub.add_parser("dash", help="serve the dashboard over the store")
    dash_cmd.add_argument("--host")
    dash_cmd.add_argument("--port", type=int)
    dash_cmd.set_defaults(func=cmd_dash)
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity + 1, 2)  # default INFO for the CLI
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from cryptolab.redact import RedactingFilter

    for handler in logging.getLogger().handlers:  # secrets never reach the terminal or a file
        handler.addFilter(RedactingFilter())
    for noisy in ("kafka", "py4j", "werkzeug", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbosity < 2 else logging.DEBUG)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (CryptolabError, ValueError) as exc:
        from cryptolab.redact import redact

        print(f"cryptolab: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or directory cryptolab needs: say which and why, no traceback
        where = f" {exc.filename}" if exc.filename else ""
        print(f"cryptolab: error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
