"""`borderfuse` command line. Each subcommand lives in its own module under ingest/commands/
and exposes `register(subparsers)`, which adds its parser and sets `func(args) -> int`."""
from __future__ import annotations

import argparse
import importlib
import sys

from ingest.settings import SettingsError, load_settings

# Order here is the order in --help.
COMMAND_MODULES = (
    "broker",     # start/stop/status the development Kafka broker
    "topics",     # create the ICD topics
    "publish",    # capture file -> Kafka
    "record",     # Kafka -> capture file
    "decode",     # capture file -> observations / dead letters (no Kafka)
    "replay",     # capture file -> incidents, same code as the live service
    "run",        # the live service
    "simulate",   # live ICD feeds into Kafka
    "demo",       # broker + topics + simulator + service + live incident feed
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="borderfuse",
        description="Real-time DE-PL border event fusion: decode both agencies' feeds, fuse them "
        "into tracks, raise the agreed incidents per joint patrol sector.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (see README); "
                        "BORDERFUSE_<SECTION>__<KEY> environment variables override it")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"ingest.commands.{name}")
        module.register(sub)
    for subparser in sub.choices.values():
        # `borderfuse run --config FILE` reads as naturally as `borderfuse --config FILE run`.
        if "--config" not in subparser._option_string_actions:
            subparser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                                   help="TOML settings file (same as the global --config)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"borderfuse: bad settings: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("borderfuse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
