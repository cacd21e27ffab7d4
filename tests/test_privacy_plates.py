"""privacy.plates: number plates as keyed HMAC pseudonyms."""
from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from borderfuse.privacy.plates import (
    HEX_CHARS, MIN_KEY_BYTES, PlateKeyError, PlatePseudonymiser, is_pseudonym, normalise_plate,
)

KEY = bytes(range(32))
PLATES = PlatePseudonymiser(KEY, "k1")
plates = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=16)
keys = st.binary(min_size=MIN_KEY_BYTES, max_size=64)


def test_a_known_pseudonym_stays_the_same_across_versions():
    """Pseudonyms must not change for the same key (linking across restarts and releases depends on it)."""
    assert PLATES.pseudonym("LU 14958") == "k1:8bb93af84868a3e61c001611f55053df"
    expected = hmac.new(KEY, b"borderfuse/plate/v1\x00LU14958", hashlib.sha256).hexdigest()[:HEX_CHARS]
    assert PLATES.pseudonym("LU14958") == f"k1:{expected}"


@given(plates)
def test_a_pseudonym_is_the_key_id_and_hex(plate):
    pseudonym = PLATES.pseudonym(plate)
    assert is_pseudonym(pseudonym) and pseudonym.startswith("k1:") and len(pseudonym) == 3 + HEX_CHARS


@given(plates, st.lists(st.sampled_from([" ", "-", "·", "."]), min_size=16, max_size=16), st.booleans())
def test_spellings_of_one_plate_have_one_pseudonym(plate, separators, lower):
    spelled = "".join(ch + sep for ch, sep in zip(plate, separators))
    spelled = spelled.lower() if lower else spelled
    assert normalise_plate(spelled) == plate
    assert PLATES.pseudonym(spelled) == PLATES.pseudonym(plate)


@given(plates, plates)
def test_different_plates_have_different_pseudonyms(a, b):
    assert (PLATES.pseudonym(a) == PLATES.pseudonym(b)) == (a == b)


@given(plates, keys, keys)
def test_another_key_gives_an_unrelated_pseudonym(plate, key_a, key_b):
    a, b = PlatePseudonymiser(key_a, "k1"), PlatePseudonymiser(key_b, "k1")
    assert (a.pseudonym(plate) == b.pseudonym(plate)) == (key_a == key_b)
    assert (a.fingerprint == b.fingerprint) == (key_a == key_b)


@given(plates)
def test_a_rotated_key_id_shows_in_every_pseudonym(plate):
    rotated = PlatePseudonymiser(b"\x01" * 32, "k2")
    assert rotated.pseudonym(plate).startswith("k2:") and rotated.pseudonym(plate) != PLATES.pseudonym(plate)


def test_the_key_never_shows_in_repr_or_fingerprint():
    key = b"S3CRET-KEY-" * 3
    shown = repr(PlatePseudonymiser(key, "k1")) + str(PlatePseudonymiser(key, "k1")) + \
        PlatePseudonymiser(key, "k1").fingerprint
    assert "S3CRET" not in shown and key.hex() not in shown and "33 bytes" in shown


@pytest.mark.parametrize("key, key_id, fragment", [
    (b"x" * 31, "k1", "31 bytes, needs at least 32"),
    (b"", "k1", "0 bytes"),
    ("x" * 40, "k1", "str"),
    (b"x" * 32, "", "key id"),
    (b"x" * 32, "k:1", "key id"),
    (b"x" * 32, "-k", "key id"),
    (b"x" * 32, "k" * 33, "key id"),
])
def test_a_short_key_or_a_bad_key_id_is_refused(key, key_id, fragment):
    with pytest.raises(PlateKeyError, match=fragment):
        PlatePseudonymiser(key, key_id)


@settings(max_examples=50)
@given(st.text(alphabet=" -.·", max_size=5))
def test_a_plate_without_letters_or_digits_has_no_pseudonym(text):
    with pytest.raises(ValueError, match="no letters or digits"):
        PLATES.pseudonym(text)
