"""Files that hold secrets (Kafka passwords, console users, the session key): written atomically with mode
600 in a folder made 700, and refused on reading when group or others may read them. Each caller words
its own error; this module only says what "private" means."""
from __future__ import annotations

import os
import stat
from pathlib import Path


def open_to_others(mode: int) -> bool:
    """True when a file of this `st_mode` may be read or written by its group or others."""
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically with mode 600 (its folder made 700 if new)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
