"""`borderfuse` command line. Each subcommand lives in a module of the package whose capability it
is (the service's under ingest/commands/, the development tools' in their own packages) and exposes
`register(subparsers)`, which adds its parser and sets `func(args) -> int`."""
from __future__ import annotations

import argparse
import importlib
import sys

from borderfuse.ingest.settings import SettingsError, load_settings
from borderfuse.privacy.plates import PlateKeyError

# Command name -> the module that registers it; order here is the order in --help.
COMMANDS = {
    "broker": "borderfuse.devbroker.command",        # start/stop/status the development Kafka broker
    "topics": "borderfuse.ingest.commands.topics",   # create the ICD topics
    "publish": "borderfuse.capture.publish",         # capture file -> Kafka
    "record": "borderfuse.capture.record",           # Kafka -> capture file
    "decode": "borderfuse.ingest.commands.decode",   # capture file -> observations / dead letters (no Kafka)
    "replay": "borderfuse.ingest.commands.replay",   # capture file -> incidents, same code as the live service
    "diff": "borderfuse.whatif.command",             # two rule sets over one capture: incidents gained/lost/changed
    "run": "borderfuse.ingest.commands.run",         # the live service
    "rules": "borderfuse.ingest.commands.rules",     # apply a rules file to the running service (no restart)
    "simulate": "borderfuse.simulator.command",      # live ICD feeds into Kafka, or a capture file
    "demo": "borderfuse.demo.command",               # broker + topics + simulator + service + live incident feed
    "console": "borderfuse.console.command",         # web console: live map, incidents per sector, ack/assign/resolve
    "cot": "borderfuse.cot.command",                 # incidents (and tracks) as Cursor-on-Target to TAK, via pytak
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="borderfuse",
        description="Real-time DE-PL border event fusion: decode both agencies' feeds, fuse them "
        "into tracks, raise the agreed incidents per joint patrol sector.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (see README); "
                        "BORDERFUSE_<SECTION>__<KEY> environment variables override it")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        module = importlib.import_module(module_name)
        module.register(sub)
    # `borderfuse run --config FILE` (and `borderfuse broker stop --config FILE`) read as naturally
    # as `borderfuse --config FILE run`: every (nested) subcommand accepts it.
    todo = list(sub.choices.values())
    while todo:
        subparser = todo.pop()
        if "--config" not in subparser._option_string_actions:
            subparser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                                   help="TOML settings file (same as the global --config)")
        for action in subparser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
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
    except PlateKeyError as exc:   # any command that meets plates: missing/unreadable/short key, one line
        print(f"borderfuse {args.command}: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:   # e.g. kafka_security.CredentialsError: no password for the principal
        print(f"borderfuse {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("borderfuse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
