"""`borderfuse replay` (placeholder until its issue lands)."""
import sys


def register(sub):
    p = sub.add_parser("replay", help="(not implemented yet)")
    p.set_defaults(func=_run)


def _run(args):
    print("borderfuse replay: not implemented yet", file=sys.stderr)
    return 2
