"""Snapshots as the previous version wrote them (pickle, pipeline snapshot version 2), carrying a payload
whose unpickling would create a marker file: refusing them must leave the marker absent."""
from __future__ import annotations

import json
import pickle
import struct
import zlib
from pathlib import Path


class MarkerOnUnpickle:
    """Unpickling this calls Path(marker).touch(): the file exists afterwards iff something unpickled it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def old_pipeline_state(marker: Path) -> bytes:
    """What the old `Pipeline.snapshot()` returned: a pickle of (version 2, ...state...)."""
    return pickle.dumps((2, MarkerOnUnpickle(marker), None, None, {}, 0, [], None), protocol=pickle.HIGHEST_PROTOCOL)


def old_service_snapshot(marker: Path, offsets=()) -> bytes:
    """What the old `encode_snapshot` wrote: b"BFS1", header length, JSON header, zlib(pipeline pickle)."""
    header = json.dumps({"offsets": [list(o) for o in offsets], "sequence": 7, "records_processed": 100,
                         "needs_flush": False, "created_unix_s": 0.0, "rules_toml": "", "rules_version": ""}).encode()
    return b"BFS1" + struct.pack(">I", len(header)) + header + zlib.compress(old_pipeline_state(marker))
