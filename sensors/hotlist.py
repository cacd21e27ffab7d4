"""`shared.hotlist` records: key `<country>:<normalised plate>`, JSON value, null value = deletion."""
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

    key: str
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
        raise MalformedError(f"hotlist key={v.show(text)} is not '<country>:<plate>'", field="key")
    doc = {"key.country": country_code, "key.plate": plate_raw}
    country = v.country(doc, "key.country", vienna=False)
    if not country:
        raise EmptyValueError(f"hotlist key={v.show(text)} has an empty country", field="key")
    return country, v.plate(doc, "key.plate")


def decode_hotlist(record: RawRecord) -> HotlistUpdate:
    """The update a hotlist record carries; raises a located DecodeError for a bad record."""
    try:
        country, plate = _parse_key(record.key)
        key = f"{country}:{plate}"
        if record.value is None:
            return HotlistUpdate(key, country, plate, None)
        doc = load_json(record.value)
        value_plate = v.plate(doc, "plate")
        value_country = v.country(doc, "country", vienna=False)
        if (value_country, value_plate) != (country, plate):
            raise MalformedError(f"hotlist key {key!r} does not match the value's country:plate "
                                 f"{value_country}:{value_plate}", field="key")
        entry = HotlistEntry(v.string(doc, "plate"), v.string(doc, "reason"), v.string(doc, "list"),
                             v.iso_time_us(doc, "added"))
        return HotlistUpdate(key, country, plate, entry)
    except DecodeError as exc:
        raise exc.locate(record)
