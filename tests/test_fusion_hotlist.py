"""fusion.hotlist: matching reads to the hotlist by plate pseudonym; the hit shows the entry's own plate."""
from __future__ import annotations

import numpy as np
import pytest

from borderfuse.fusion.hotlist import HotlistMatcher
from borderfuse.fusion.rules import HotlistRule
from borderfuse.privacy.plates import PlatePseudonymiser
from borderfuse.sensors.base import Observation
from borderfuse.sensors.hotlist import HotlistEntry, HotlistUpdate

OLD = PlatePseudonymiser(b"\x01" * 32, "k1")
NEW = PlatePseudonymiser(b"\x02" * 32, "k2")
T0 = 1_795_000_000_000_000


def listed(plates: PlatePseudonymiser, plate="LU 14958", country="PL", present=True) -> HotlistUpdate:
    entry = HotlistEntry(plate, "stolen vehicle", "SIS", T0) if present else None
    normalised = plate.replace(" ", "").replace("-", "").upper()
    return HotlistUpdate(f"{country}:{plates.pseudonym(plate)}", country, normalised, entry)


def read(plates: PlatePseudonymiser, t_s=0.0, sensor="DE-ANPR-1", plate="LU14958", country="PL"):
    return Observation(T0 + int(t_s * 1e6), "DE", sensor, "anpr", np.zeros(2), np.eye(2), cls="vehicle",
                       plate=plates.pseudonym(plate), country=country, direction="DE->PL")


def test_a_pseudonymised_read_matches_and_the_hit_shows_the_listed_plate():
    matcher = HotlistMatcher(HotlistRule())
    matcher.apply(listed(OLD))
    event = matcher.read(read(OLD, plate="lu-14958"), None)
    assert event is not None and event.new and event.plate == "LU14958" and event.reason == "stolen vehicle"
    assert "LU14958" not in event.passage.incident_id and OLD.pseudonym("LU14958")[3:] in event.passage.incident_id


@pytest.mark.parametrize("reader, country", [(NEW, "PL"), (OLD, "CZ")])
def test_another_key_or_country_does_not_match(reader, country):
    matcher = HotlistMatcher(HotlistRule())
    matcher.apply(listed(OLD))
    assert matcher.read(read(reader, country=country), None) is None


def test_a_rotated_key_rekeys_the_list_and_the_open_passage():
    matcher = HotlistMatcher(HotlistRule())
    matcher.apply(listed(OLD))
    first = matcher.read(read(OLD, sensor="DE-ANPR-1"), None)
    matcher.rekey(NEW.pseudonym)
    assert list(matcher.entries) == [f"PL:{NEW.pseudonym('LU14958')}"]
    update = matcher.read(read(NEW, t_s=60, sensor="PL-ANPR-1"), None)    # the same passage, after the rotation
    assert update is not None and not update.new and update.passage is first.passage and update.passage.seq == 2
    assert matcher.read(read(OLD, t_s=70, sensor="PL-ANPR-2"), None) is None   # old pseudonyms no longer link


def test_a_delisted_plate_is_not_shown_in_a_later_update():
    matcher = HotlistMatcher(HotlistRule())
    matcher.apply(listed(OLD))
    matcher.read(read(OLD), None)
    matcher.apply(listed(OLD, present=False))
    event = matcher.read(read(OLD, t_s=30, sensor="PL-ANPR-1"), None)
    assert event is not None and event.plate == ""
