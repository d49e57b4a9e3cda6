"""The ``cryptolab`` subcommands: each takes the parsed arguments, calls library functions and
prints what a user needs to see. The parser is in :mod:`cryptolab.cli`."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cryptolab.errors import CryptolabError
from cryptolab.settings import Settings, load_settings
from cryptolab.times import EPOCH, iso_z, to_utc

log = logging.getLogger("cryptolab")

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
    verbose = getattr(args, "verbose", 0) > 0 or None  # -v: the JVM logs on the terminal too
    return load_settings(
        data_dir=getattr(args, "data_dir", None), jvm_logs_to_terminal=verbose, **extra
    )


def _until_interrupted() -> None:
    """Block until Ctrl-C."""
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass


def _source(args: argparse.Namespace, settings: Settings) -> Any:
    from cryptolab.feeds.source import demo_tape, live_source, only_symbols, replay_source

    if args.source == "replay":
        source = replay_source(args.tape or demo_tape(), args.speed)
        return only_symbols(source, settings) if args.symbols else source
    if args.tape:
        raise CryptolabError("--tape goes with --source replay")
    return live_source(settings)


def _header(settings: Settings, source: Any) -> None:
    """The first lines of ``up``: what runs, where its data and the JVMs' logs are."""
    from cryptolab.doctor import log_files

    logs = log_files(settings)
    print(f"cryptolab up: {source.description}", flush=True)
    print(f"  data  {settings.data_dir.resolve()}", flush=True)
    shown = ", ".join(f"{name} {path}" for name, path in logs.items() if "console" not in name)
    print(f"  logs  {shown} (the terminal shows them with -v)", flush=True)
    print("  stop  Ctrl-C (stops between micro-batches and prints a summary)", flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    from cryptolab.cli.terminal import StopSignals, summary
    from cryptolab.stack import Stack

    settings = _settings(
        args,
        symbols=args.symbols,
        quote_asset=args.quote,
        dash_host=args.host,
        dash_port=args.port,
    )
    if args.until_drained and args.source != "replay":
        raise CryptolabError("--until-drained needs --source replay (a live feed never ends)")
    source = _source(args, settings)
    stack = Stack(settings, source)
    _header(settings, source)

    def on_press(presses: int) -> None:
        stack.interrupt()
        if presses == 1 and signals.abortable:
            log.info("stopping once started (Ctrl-C again to abort the start)")
        elif presses == 1:
            log.info("stopping: storing what Kafka holds first (Ctrl-C again to skip that)")
        else:
            log.info("stopping now: what is not stored yet stays in Kafka for the next start")

    totals = None
    signals = StopSignals(on_press)
    with signals:
        try:
            signals.abortable = True
            stack.start(dash=not args.no_dash)
            signals.abortable = False
            if stack.dashboard is not None:
                print(f"dashboard: {stack.dashboard.url}", flush=True)
            if stack.share is not None:
                print(f"store (read-only, ClickHouse HTTP): {stack.share.url}", flush=True)
            stack.run(seconds=args.seconds, until_drained=args.until_drained)
            totals = stack.totals()
        except KeyboardInterrupt:
            log.info("start aborted")
        finally:
            signals.abortable = False
            stack.stop()
    if totals is not None:
        print(summary(totals), flush=True)
    return 0


def _stop_on_signals(stop: threading.Event, abortable: bool = True) -> Any:
    """First Ctrl-C/SIGTERM: ``stop`` (the command ends cleanly); a second one: at once, when
    ``abortable``."""
    from cryptolab.cli.terminal import StopSignals

    def on_press(presses: int) -> None:
        stop.set()
        if presses == 1:
            log.info("stopping" + (" (Ctrl-C again to stop at once)" if abortable else ""))

    signals = StopSignals(on_press)
    signals.abortable = abortable
    return signals


def cmd_produce(args: argparse.Namespace) -> int:
    from cryptolab.stages import run_producer

    settings = _settings(args, symbols=args.symbols, quote_asset=args.quote)
    stop = threading.Event()
    started = time.monotonic()
    with _stop_on_signals(stop):
        stats = run_producer(settings, _source(args, settings), stop)
    print(
        f"published frames={stats.frames} trades={stats.trades} dlq={stats.dlq} "
        f"in {time.monotonic() - started:.2f} s",
        flush=True,
    )
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from cryptolab.stages import run_streaming

    settings = _settings(args)
    stop = threading.Event()
    with _stop_on_signals(stop):
        run_streaming(settings, stop, until_caught_up=args.until_caught_up)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from cryptolab.doctor import FAIL, render, run_checks

    checks = run_checks(_settings(args))
    sys.stdout.write(render(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


def cmd_query(args: argparse.Namespace) -> int:
    from cryptolab.cli.render import render_candles
    from cryptolab.store import open_store, queries

    symbol = _symbol(args.symbol)
    if args.interval not in queries.INTERVALS:
        raise CryptolabError(
            f"unknown interval {args.interval[:40]!r} (--interval); "
            f"use one of {', '.join(queries.INTERVALS)}"
        )
    if args.last is not None and not 1 <= args.last <= MAX_LAST:
        raise CryptolabError(f"--last must be between 1 and {MAX_LAST}")
    settings = _settings(args)
    store = open_store(settings, read_only=True)
    try:
        frame = queries.candles(store, symbol, args.interval, args.start, args.end, last=args.last)
    finally:
        store.close()
    sys.stdout.write(render_candles(frame, args.format))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from cryptolab.store import open_store
    from cryptolab.store.endpoint import require_store_owner
    from cryptolab.store.reconcile import reconcile

    settings = _settings(args)
    if not args.dry_run:
        require_store_owner(
            settings,
            "`cryptolab reconcile` writes corrected candles (the running pipeline reconciles "
            "closed windows itself every CRYPTOLAB_RECONCILE_EVERY_SECONDS; `reconcile "
            "--dry-run` only reports and works now)",
        )
    store = open_store(settings, read_only=args.dry_run)
    try:
        since = args.since or EPOCH
        report = reconcile(store, since, args.until, write=not args.dry_run)
    finally:
        store.close()
    print(report.describe())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from cryptolab.report import render_report

    settings = _settings(args)
    start, end = to_utc(args.start), to_utc(args.end)
    if start >= end:
        raise CryptolabError("--start must be before --end")
    parameters = {
        "symbol": _symbol(args.symbol),
        "start": iso_z(start),
        "end": iso_z(end),
        "interval": args.interval,
        "tape": None if args.tape is None or args.tape.lower() == "none" else str(args.tape),
        "data_dir": str(settings.data_dir.resolve()),
    }
    if args.base_url:  # a parameter of 04_history only
        parameters["base_url"] = args.base_url
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
    from cryptolab.feeds.tapes.synth import DEFAULT_START_MS, synth_frames
    from cryptolab.feeds.tapes.tape import write_frames

    start_ms = int(args.start.timestamp() * 1000) if args.start else DEFAULT_START_MS
    symbols = load_settings(symbols=args.symbols).symbols
    frames = synth_frames(
        symbols, args.seconds, args.rate, args.seed, start_ms, args.jitter_ms, args.micros
    )
    count = write_frames(args.out, frames)
    print(f"wrote {count} frames to {args.out}")
    return 0


def cmd_tape_import(args: argparse.Namespace) -> int:
    from cryptolab.feeds.tapes.vision import import_tape

    count = import_tape(args.file, args.symbol, args.out)
    print(f"wrote {count} trades to {args.out}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from cryptolab.feeds.tapes.record import record

    settings = _settings(args, symbols=args.symbols, quote_asset=args.quote)
    stop = threading.Event()
    print(f"recording {','.join(settings.symbols)} to {args.out} (Ctrl-C stops)", flush=True)
    with _stop_on_signals(stop, abortable=False):
        result = record(settings, args.out, args.seconds, stop)
    fields = " ".join(f"{k}={v}" for k, v in result.counters.items())
    print(f"wrote {result.frames} frames to {args.out} ({fields})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:

    from cryptolab.feeds.server.app import Faults, ReplayServer

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
    store = open_store(settings, read_only=True)
    server = DashServer.start(store, settings)
    print(f"dashboard: {server.url}", flush=True)
    try:
        _until_interrupted()
    finally:
        server.stop()
        store.close()
    return 0
