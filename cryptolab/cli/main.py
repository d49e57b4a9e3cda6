"""Command line: parse arguments, then call library functions. No pipeline logic here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptolab.cli import commands as cmd
from cryptolab.cli.terminal import configure_logging
from cryptolab.errors import CryptolabError
from cryptolab.feeds.tapes.tape import parse_speed
from cryptolab.times import parse_utc


def _speed(text: str) -> float | None:
    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _iso(text: str) -> datetime:
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    from cryptolab.feeds.server.app import Withhold

    try:
        return Withhold.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- parser -------------------------------------------------------------------------------------
def _feed_options() -> argparse.ArgumentParser:
    """Where frames come from (``up``, ``produce``)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--source", choices=("binance", "replay"), default="binance")
    options.add_argument("--tape", type=Path, help="tape to replay (default: the bundled sample)")
    options.add_argument("--speed", type=_speed, default=1.0, help="replay speed factor or 'max'")
    _symbol_options(options)
    return options


def _symbol_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--symbols",
        help="comma-separated, e.g. BTCUSDT,ETHUSDT; or 'all': every symbol trading on Binance "
        "spot, followed as symbols are listed and delisted",
    )
    parser.add_argument(
        "--quote", help="with --symbols all: only symbols quoted in this asset, e.g. USDT"
    )


def _dash_options() -> argparse.ArgumentParser:
    """Where the dashboard listens (``up``, ``dash``)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--host", help="dashboard host (default CRYPTOLAB_DASH_HOST, 127.0.0.1)")
    options.add_argument("--port", type=int, help="dashboard port (default CRYPTOLAB_DASH_PORT)")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cryptolab",
        description="Binance trades -> Kafka -> Spark (10 s candles) -> ClickHouse -> Dash. "
        "Settings come from CRYPTOLAB_* environment variables or .env (see the README).",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: also the Spark driver's log and other libraries' INFO lines on the terminal "
        "(by default they go to files under the data dir, see `cryptolab doctor`); -vv: debug",
    )
    parser.add_argument("--data-dir", type=Path, help="state directory (CRYPTOLAB_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    feed, dash = _feed_options(), _dash_options()

    up = sub.add_parser(
        "up",
        parents=[feed, dash],
        help="run the whole pipeline (feed, Kafka, Spark, store, dashboard)",
    )
    up.add_argument(
        "--until-drained",
        action="store_true",
        help="replay only: exit once every trade is in the store and candles are final",
    )
    up.add_argument("--seconds", type=_positive_float, help="run this long, drain, then exit")
    up.add_argument("--no-dash", action="store_true", help="do not serve the dashboard")
    up.set_defaults(func=cmd.cmd_up)

    produce = sub.add_parser(
        "produce", parents=[feed], help="the feed alone: Binance or a tape -> Kafka"
    )
    produce.set_defaults(func=cmd.cmd_produce)

    stream = sub.add_parser("stream", help="the streaming job alone: Kafka -> Spark -> store")
    stream.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit once everything in the topic at start is in the store",
    )
    stream.set_defaults(func=cmd.cmd_stream)

    doctor = sub.add_parser("doctor", help="check Java, jars, ports, Kafka, ClickHouse, Spark")
    doctor.set_defaults(func=cmd.cmd_doctor)

    query = sub.add_parser("query", help="read from the store")
    qsub = query.add_subparsers(dest="what", required=True)
    qc = qsub.add_parser("candles", help="candles of one symbol")
    qc.add_argument("--symbol", required=True)
    qc.add_argument("--interval", default="10s", help="10s, 1m, 5m, 15m, 1h or 1d")
    qc.add_argument("--start", type=_iso)
    qc.add_argument("--end", type=_iso)
    qc.add_argument("--last", type=_count, help="only the newest N candles")
    qc.add_argument("--format", choices=("csv", "json", "table"), default="table")
    qc.set_defaults(func=cmd.cmd_query)

    rec = sub.add_parser("reconcile", help="re-derive 10 s candles from raw trades, report changes")
    rec.add_argument("--since", type=_iso, help="first window (default: all)")
    rec.add_argument("--until", type=_iso, help="end of the range (default: now and later)")
    rec.add_argument(
        "--dry-run",
        action="store_true",
        help="only report the windows that differ (reads; works while the pipeline runs)",
    )
    rec.set_defaults(func=cmd.cmd_reconcile)

    rep = sub.add_parser(
        "report", help="run a notebook headless (papermill) into an executed notebook + HTML"
    )
    rep.add_argument("--notebook", default="03_market_report", help="name in notebooks/ or path")
    rep.add_argument("--symbol", required=True)
    rep.add_argument("--start", type=_iso, required=True, help="ISO 8601, e.g. 2026-11-01T00:00Z")
    rep.add_argument("--end", type=_iso, required=True)
    rep.add_argument("--interval", default="1m", choices=("10s", "1m", "5m", "15m", "1h", "1d"))
    rep.add_argument(
        "--tape",
        help="report on this tape ('sample' = the bundled one); default or 'none': the store "
        "(the running pipeline's, read-only, while it runs)",
    )
    rep.add_argument(
        "--base-url",
        help="04_history: the trade archive, e.g. https://data.binance.vision (default 'sample', "
        "an offline stand-in made from the bundled tape)",
    )
    rep.add_argument("--out", type=Path, default=Path("reports"), help="output directory")
    rep.set_defaults(func=cmd.cmd_report)

    kafka = sub.add_parser("kafka", help="manage the local Kafka broker")
    kafka.add_argument("action", choices=("start", "stop", "status"))
    kafka.set_defaults(func=cmd.cmd_kafka)

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
    synth.add_argument(
        "--micros", action="store_true", help="times in µs (Binance's timeUnit=MICROSECOND)"
    )
    synth.add_argument("--out", type=Path, required=True)
    synth.set_defaults(func=cmd.cmd_tape_synth)
    imp = tsub.add_parser(
        "import", help="convert a data.binance.vision spot trades file (.csv or .zip) to a tape"
    )
    imp.add_argument("file", type=Path)
    imp.add_argument("--symbol", required=True, help="the file's symbol, e.g. BTCUSDT")
    imp.add_argument("--out", type=Path, required=True)
    imp.set_defaults(func=cmd.cmd_tape_import)

    rec = sub.add_parser("record", help="record the live feed to a tape")
    _symbol_options(rec)
    rec.add_argument("--out", type=Path, required=True, help="tape file (.jsonl or .jsonl.gz)")
    rec.add_argument(
        "--seconds", type=_positive_float, help="stop after this long (default: Ctrl-C)"
    )
    rec.set_defaults(func=cmd.cmd_record)

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
    serve.set_defaults(func=cmd.cmd_serve)

    jars = sub.add_parser("jars", help="JVM jars (Kafka broker, Spark Kafka connector)")
    jars.add_argument("action", choices=("fetch",))
    jars.set_defaults(func=cmd.cmd_jars)

    from cryptolab.cli.history import add_parsers as add_history

    add_history(sub)

    dash_cmd = sub.add_parser("dash", parents=[dash], help="serve the dashboard over the store")
    dash_cmd.set_defaults(func=cmd.cmd_dash)
    return parser


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
    except KeyboardInterrupt:  # a second Ctrl-C while a stop was under way
        print("cryptolab: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file or directory cryptolab needs: say which and why, no traceback
        where = f" {exc.filename}" if exc.filename else ""
        print(f"cryptolab: error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
