"""The plate key file: read it into a `PlatePseudonymiser`, or make the development key when missing.

The file holds the key as hex (at least 64 hex digits = 32 bytes; whitespace ignored), mode 600,
outside the work tree. Only the default location (`PrivacySettings().plate_key_file`,
`~/.config/borderfuse/plate-key`) is created when missing: a deployment names its own file, and a
missing one there is an error, not a silently new key (a new key unlinks every pseudonym from the
ones before it).
"""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from borderfuse.ingest.private_files import open_to_others
from borderfuse.ingest.settings import PrivacySettings
from borderfuse.privacy.plates import MIN_KEY_BYTES, PlateKeyError, PlatePseudonymiser

DEFAULT_KEY_FILE = PrivacySettings().plate_key_file


def ensure_dev_plate_key(path: Path | str = DEFAULT_KEY_FILE) -> bool:
    """Make a random 32-byte key at `path` (mode 600, folder 700) unless a file is there; True if made."""
    path = Path(path).expanduser()
    if path.exists():
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False        # made by another process meanwhile: use theirs
    except OSError as exc:
        raise PlateKeyError(f"cannot create the development plate key {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
    return True


def read_plate_key(path: Path | str) -> bytes:
    """The key bytes of a key file; PlateKeyError (one line naming the file) when it is unusable."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise PlateKeyError(f"plate key file {path} does not exist (privacy.plate_key_file)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not ASCII hex"
        raise PlateKeyError(f"plate key file {path} is unreadable: {why}") from exc
    if open_to_others(mode):
        raise PlateKeyError(f"plate key file {path} has mode {stat.S_IMODE(mode):o}: others may read it; "
                            f"chmod 600 {path}")
    digits = "".join(text.split())
    try:
        key = bytes.fromhex(digits)
    except ValueError as exc:
        raise PlateKeyError(f"plate key file {path} does not hold a hex key") from exc
    if len(key) < MIN_KEY_BYTES:
        raise PlateKeyError(f"plate key file {path} holds {len(key)} bytes, needs at least {MIN_KEY_BYTES} "
                            f"({2 * MIN_KEY_BYTES} hex digits)")
    return key


def plate_pseudonymiser(settings) -> PlatePseudonymiser:
    """The pseudonymiser of `settings.privacy` (a Settings or a PrivacySettings); makes the dev key if
    it is the default file and missing. Raises PlateKeyError with a one-line message."""
    privacy = getattr(settings, "privacy", settings)
    path = Path(privacy.plate_key_file).expanduser()
    if path == DEFAULT_KEY_FILE:
        ensure_dev_plate_key(path)
    return PlatePseudonymiser(read_plate_key(path), privacy.plate_key_id)
