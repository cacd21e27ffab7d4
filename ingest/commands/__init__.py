"""One module per `borderfuse` subcommand; each exposes register(subparsers)."""
