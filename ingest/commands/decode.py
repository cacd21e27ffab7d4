"""`borderfuse decode` (placeholder until its issue lands)."""
import sys


def register(sub):
    p = sub.add_parser("decode", help="(not implemented yet)")
    p.set_defaults(func=_run)


def _run(args):
    print("borderfuse decode: not implemented yet", file=sys.stderr)
    return 2
