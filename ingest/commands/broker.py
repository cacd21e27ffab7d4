"""`borderfuse broker` (placeholder until its issue lands)."""
import sys


def register(sub):
    p = sub.add_parser("broker", help="(not implemented yet)")
    p.set_defaults(func=_run)


def _run(args):
    print("borderfuse broker: not implemented yet", file=sys.stderr)
    return 2
