"""`python -m borderfuse ...` is the `borderfuse` command."""
import sys

from borderfuse.ingest.cli import main

sys.exit(main())
