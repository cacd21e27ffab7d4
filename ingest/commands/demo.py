"""`borderfuse demo` (placeholder until its issue lands)."""
import sys


def register(sub):
    p = sub.add_parser("demo", help="(not implemented yet)")
    p.set_defaults(func=_run)


def _run(args):
    print("borderfuse demo: not implemented yet", file=sys.stderr)
    return 2
