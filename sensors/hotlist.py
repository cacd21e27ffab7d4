"""`shared.hotlist` records: key `<country>:<normalised plate>`, JSON value, null value = deletion.

Given a plate pseudonymiser (`borderfuse.privacy.plates`), the update's `key` is
`<country>:<pseudonym>`, the form in which decoded ANPR reads carry their plates, so the hotlist
is matched without a clear plate on the read side; the entry keeps the plate as listed (the hit is
the lawful reason to show it). Error messages never quote a plate."""
from __future__ import annotations

import attrs

from borderfuse.sensors import validate as v
from borderfuse.sensors.base import DecodeError, EmptyValueError, MalformedError, RawRecord
from borderfuse.sensors.de_json import load_json


@attrs.frozen(slots=True)
class HotlistEntry:
    plate_as_listed: str
    reason: str
    list: str
    added_us: int  # UTC µs


@attrs.frozen(slots=True)
class HotlistUpdate:
    """Set (`entry` given) or delete (`entry` None) the hotlist entry `key` = `country:plate`."""

    key: str      # `<country>:<pseudonym>` (or `<country>:<plate>` when decoded without a pseudonymiser)
    country: str  # ISO 3166-1 alpha-2
    plate: str    # normalised: A-Z and 0-9 only
    entry: HotlistEntry | None


def _parse_key(raw: bytes | None) -> tuple[str, str]:
    if not raw:
        raise EmptyValueError("hotlist record has no key (expected '<country>:<plate>')", field="key")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError(f"hotlist key is not UTF-8: invalid byte at position {exc.start}", field="key") from exc
    country_code, sep, plate_raw = text.partition(":")
    if not sep:
        raise MalformedError(f"hotlist key ({len(text)} characters) is not '<country>:<plate>'", field="key")
    doc = {"key.country": country_code, "key.plate": plate_raw}
    country = v.country(doc, "key.country", vienna=False)
    if not country:
        raise EmptyValueError("hotlist key has an empty country", field="key")
    return country, v.plate(doc, "key.plate")


def decode_hotlist(record: RawRecord, plates=None) -> HotlistUpdate:
    """The update a hotlist record carries; raises a located DecodeError for a bad record.
    `plates`: a `PlatePseudonymiser` (the pipeline always passes one; None only in decoder tests)."""
    try:
        country, plate = _parse_key(record.key)
        key = f"{country}:{plate if plates is None else plates.pseudonym(plate)}"
        if record.value is None:
            return HotlistUpdate(key, country, plate, None)
        doc = load_json(record.value)
        value_plate = v.plate(doc, "plate")
        value_country = v.country(doc, "country", vienna=False)
        if (value_country, value_plate) != (country, plate):
            raise MalformedError("hotlist key does not match the value's country:plate"
                                 + (" (the countries differ)" if value_country != country else ""), field="key")
        entry = HotlistEntry(v.string(doc, "plate"), v.string(doc, "reason"), v.string(doc, "list"),
                             v.iso_time_us(doc, "added"))
        return HotlistUpdate(key, country, plate, entry)
    except DecodeError as exc:
        raise exc.locate(record)
