"""`borderfuse console`: the patrol centres' web console, live over Kafka or replaying a capture."""
from __future__ import annotations

import signal
import sys
import threading


def register(sub):
    p = sub.add_parser(
        "console", help="web console: live map of tracks and incidents per sector, acknowledge/assign/resolve",
        description="Serve the patrol centres' web console. Operators log in (users from console.users_file, "
        "argon2-hashed passwords; `borderfuse console users add` adds one) and see and act on their own "
        "sectors only; logins, logouts, actions and refusals go to the audit trail borderfuse.audit. "
        "Live (default): for each sector served (--sectors, else console.sectors, else all) reads incidents.<S>, "
        "tracks.<S> and actions.<S> of the broker (kafka.bootstrap_servers, or --bootstrap) as Kafka principal "
        "centre-<S> and writes operators' actions to actions.<S>; a restarted console rebuilds its state from "
        "the topics. "
        "Replay (--capture): runs the fusion pipeline over a capture file in-process, with no broker, at --speed "
        "times the capture's time, and shows it on the same page. The map is drawn from the ICD geography "
        "(icd.geo_dir) and needs no tile server. Prints the URL; Ctrl-C stops. "
        "`borderfuse console users add NAME --sectors S1,S2` adds or replaces a user (password from the "
        "terminal, or one line of stdin); `users list` lists them; `users dev` makes the development users "
        "file when there is none.")
    p.add_argument("--capture", metavar="FILE", help="replay this capture file (.jsonl or .jsonl.gz) instead of "
                   "reading Kafka")
    p.add_argument("--rules", metavar="FILE", help="replay only: rules TOML (default: fusion.rules_file)")
    p.add_argument("--speed", type=float, default=1.0, help="replay only: capture seconds per wall-clock second "
                   "(default 1)")
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="live only: broker (default kafka.bootstrap_servers)")
    p.add_argument("--host", help="address to serve on (default: settings console.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to serve on (default: settings console.port, 8800)")
    p.add_argument("--basemap-url", metavar="URL", help="optional raster tile URL template "
                   "(e.g. https://tiles.example/{z}/{x}/{y}.png; default: settings console.basemap_url); without "
                   "one the map is vector layers only")
    p.add_argument("--console-id", metavar="NAME", help="name of this console in action records "
                   "(default host:port)")
    p.add_argument("--sectors", metavar="S1,S2", help="sectors this console serves (default: settings "
                   "console.sectors, else every sector of the sectors file)")
    p.set_defaults(func=_run)
    users = p.add_subparsers(dest="console_action", metavar="users", required=False).add_parser(
        "users", help="manage the console's users file (console.users_file)",
        description="The console's users file (settings console.users_file, mode 600, outside the work tree): "
        "argon2-hashed passwords and each user's sectors.")
    actions = users.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add or replace a user (asks for the password; or reads one line of stdin)",
                             description="Add or replace user NAME with the given sectors. The password is asked "
                             "twice on a terminal, or read as one line from stdin (e.g. from a password manager); "
                             "at least 8 characters. A running console takes the change at the next request.")
    add.add_argument("name", metavar="NAME", help="user name, e.g. centre-S1 or a person's login")
    add.add_argument("--sectors", required=True, metavar="S1,S2", help="the sectors this user sees and acts on")
    add.set_defaults(func=_users_add)
    actions.add_parser("list", help="list the users and their sectors").set_defaults(func=_users_list)
    actions.add_parser("dev", help="make the development users file if there is none (centre-<S> per sector "
                       "and a supervisor; passwords in console-dev-logins.toml beside it)").set_defaults(
                           func=_users_dev)


def _run(args) -> int:
    from borderfuse.console.server import ConsoleError, start_console
    from borderfuse.ingest.commands.run import configure_logging

    if args.capture is None and (args.rules is not None or args.speed != 1.0):
        print("borderfuse console: --rules and --speed need --capture (replay mode)", file=sys.stderr)
        return 2
    if args.capture is not None and args.bootstrap is not None:
        print("borderfuse console: --bootstrap is for live mode; replay (--capture) needs no broker", file=sys.stderr)
        return 2
    if not args.speed > 0:
        print(f"borderfuse console: --speed must be > 0, got {args.speed}", file=sys.stderr)
        return 2
    configure_logging()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        cfg = args.settings.console
        host = args.host or cfg.host
        port = cfg.port if args.port is None else args.port
        console = start_console(args.settings, host=host, port=port, capture=args.capture,
                                rules_file=args.rules, speed=args.speed, bootstrap=args.bootstrap,
                                basemap_url=args.basemap_url or cfg.basemap_url or None, console_id=args.console_id,
                                sectors=args.sectors)
    except ConsoleError as exc:
        print(f"borderfuse console: {exc}", file=sys.stderr)
        return 2
    print(f"console: {console.url} ({console.mode}); log in with a user of {cfg.users_file}; Ctrl-C stops",
          file=sys.stderr, flush=True)
    replay_reported = False
    try:
        while not stop.wait(0.5):
            done = getattr(console.feed, "done", None)
            if done is not None and done.is_set() and not replay_reported:
                replay_reported = True
                error = console.feed.error
                print(f"console: {error}" if error else f"console: replay done: {console.feed.records} records, "
                      f"{console.feed.incidents} incidents; still serving", file=sys.stderr, flush=True)
    finally:
        console.stop()
    return 0


def _known_sectors(settings) -> list[str]:
    from borderfuse.ingest.topics import sector_topics

    return list(sector_topics(settings.icd.geo_dir))


def _read_password() -> str:
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _users_add(args) -> int:
    from borderfuse.console.users import UsersFileError, add_user
    from borderfuse.ingest.topics import TopicsError

    path = args.settings.console.users_file
    try:
        known = _known_sectors(args.settings)
        password = _read_password()
        replaced = add_user(path, args.name, password, args.sectors.split(","), known)
    except (UsersFileError, TopicsError, ValueError) as exc:
        print(f"borderfuse console users: {exc}", file=sys.stderr)
        return 2
    print(f"{'replaced' if replaced else 'added'} user {args.name} (sectors {args.sectors}) in {path}")
    return 0


def _users_list(args) -> int:
    from borderfuse.console.users import UsersFileError, load_users

    try:
        users = load_users(args.settings.console.users_file)
    except UsersFileError as exc:
        print(f"borderfuse console users: {exc}", file=sys.stderr)
        return 2
    for user in users.values():
        print(f"{user.name}\t{','.join(user.sectors)}")
    return 0


def _users_dev(args) -> int:
    from borderfuse.console.users import UsersFileError, dev_logins_path, ensure_dev_users
    from borderfuse.ingest.topics import TopicsError

    path = args.settings.console.users_file
    try:
        made = ensure_dev_users(path, _known_sectors(args.settings))
    except (UsersFileError, TopicsError, OSError) as exc:
        print(f"borderfuse console users: {exc}", file=sys.stderr)
        return 2
    if made is None:
        print(f"console users file {path} exists: left as it is")
    else:
        print(f"made development console users {', '.join(made)} in {path}; their passwords are in "
              f"{dev_logins_path(path)}")
    return 0
