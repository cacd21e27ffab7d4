"""Number plates as keyed pseudonyms: `"<key id>:<hex>"`, HMAC-SHA-256 of the normalised plate.

Why a keyed MAC and not a plain hash: plates are a small, guessable space (a few letters and digits),
so an unkeyed hash is reversed by enumerating it; without the key nobody can compute or test a
pseudonym (the EDPB's guidance on pseudonymisation by keyed MACs). The same key gives the same
pseudonym for the same plate, so reads of one vehicle still link (tracks, passages, hotlist
matching); a new key (a new key id) gives unrelated pseudonyms, so reads before and after a
rotation do not link, by design.

The plate is normalised first (upper case, letters A-Z and digits only: the ICD's hotlist
normalisation), so "LU 14958", "lu-14958" and "LU14958" have one pseudonym. The country is not
part of the MAC: it stays beside the pseudonym in clear (it identifies nobody on its own), and
the hotlist matches on `<country>:<pseudonym>` as it matched on `<country>:<plate>`.
"""
from __future__ import annotations

import hashlib
import hmac
import re

import attrs

MIN_KEY_BYTES = 32          # HMAC-SHA-256's own block of strength; shorter keys are refused
HEX_CHARS = 32              # 128 bits of the MAC: collisions among plates are out of reach, ids stay short
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
PSEUDONYM_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}:[0-9a-f]{%d}" % HEX_CHARS)
_DOMAIN = b"borderfuse/plate/v1\x00"   # separates these MACs from any other use of the same key
_NOT_PLATE_CHARS = re.compile(r"[^A-Z0-9]")


class PlateKeyError(ValueError):
    """The plate key or its id is unusable (too short, bad id); the message says which and why."""


def normalise_plate(raw: str) -> str:
    """Upper case, letters A-Z and digits only (the ICD's normalisation for hotlist matching)."""
    return _NOT_PLATE_CHARS.sub("", raw.upper())


def is_pseudonym(value: str) -> bool:
    return PSEUDONYM_PATTERN.fullmatch(value) is not None


def _key_id(instance, attribute, value):
    if not isinstance(value, str) or KEY_ID_PATTERN.fullmatch(value) is None:
        raise PlateKeyError(f"plate key id {value!r} must be 1-32 of A-Z a-z 0-9 _ . - (starting with a letter "
                            "or digit; no ':')")


def _key(instance, attribute, value):
    if not isinstance(value, bytes) or len(value) < MIN_KEY_BYTES:
        size = len(value) if isinstance(value, bytes) else type(value).__name__
        raise PlateKeyError(f"plate key has {size} bytes, needs at least {MIN_KEY_BYTES}")


@attrs.frozen(slots=True, repr=False)
class PlatePseudonymiser:
    """`pseudonym(plate)` -> `"<key_id>:<32 hex>"`. The key never appears in repr/str."""

    key: bytes = attrs.field(validator=_key)
    key_id: str = attrs.field(validator=_key_id)

    def __repr__(self) -> str:
        return f"PlatePseudonymiser(key_id={self.key_id!r}, key=<{len(self.key)} bytes>)"

    def pseudonym(self, plate: str) -> str:
        """The pseudonym of a plate as read or as listed (normalised here; empty after it is refused)."""
        normalised = normalise_plate(plate)
        if not normalised:
            raise ValueError("a plate with no letters or digits has no pseudonym")
        mac = hmac.new(self.key, _DOMAIN + normalised.encode("ascii"), hashlib.sha256).hexdigest()
        return f"{self.key_id}:{mac[:HEX_CHARS]}"

    @property
    def fingerprint(self) -> str:
        """Names this key (id and a MAC of a constant) without revealing it: for caches keyed on it."""
        mac = hmac.new(self.key, b"borderfuse/plate-key-fingerprint", hashlib.sha256).hexdigest()
        return f"{self.key_id}:{mac[:16]}"
