"""Field checks shared by every decoder. Each raises a typed DecodeError naming the field and value."""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from borderfuse.privacy.plates import normalise_plate
from borderfuse.sensors.base import (
    BadTimestampError, EmptyValueError, ImpossibleValueError, MalformedError, OutOfRangeError,
    OversizedFieldError, RawRecord,
)

MAX_STRING_CHARS = 256
MAX_PLATE_CHARS = 16
MAX_CLOCK_SKEW_US = 24 * 3600 * 1_000_000  # event time vs broker time, per the ICD
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
_ISO2 = re.compile(r"[A-Z]{2}")

# Vienna Convention distinguishing signs that differ from the ISO 3166-1 alpha-2 code. Two-letter
# signs not listed here are the same as the ISO code (PL, CZ, SK, UA, LT, LV, NL, CH, HR...).
VIENNA_TO_ISO2 = {
    "D": "DE", "A": "AT", "B": "BE", "F": "FR", "I": "IT", "H": "HU", "E": "ES", "P": "PT", "S": "SE",
    "N": "NO", "L": "LU", "M": "MT", "V": "VA", "J": "JP", "C": "CU", "K": "KH", "T": "TH", "Q": "QA",
    "UK": "GB", "GB": "GB", "GBZ": "GI", "GBJ": "JE", "GBG": "GG", "GBM": "IM", "IRL": "IE",
    "FIN": "FI", "EST": "EE", "SLO": "SI", "SRB": "RS", "BIH": "BA", "MNE": "ME", "NMK": "MK",
    "MK": "MK", "RUS": "RU", "FL": "LI", "RSM": "SM", "AND": "AD", "CY": "CY", "DK": "DK",
    "USA": "US", "CDN": "CA", "AUS": "AU", "KS": "KG", "TJ": "TJ", "TM": "TM", "UZ": "UZ", "AZ": "AZ",
    "GE": "GE", "ARM": "AM", "AM": "AM", "IL": "IL", "RL": "LB", "SYR": "SY", "IRQ": "IQ", "IR": "IR",
    "RC": "TW", "RO": "RO", "BG": "BG", "GR": "GR", "TR": "TR", "MD": "MD", "BY": "BY", "KZ": "KZ",
    "AL": "AL", "IS": "IS", "MC": "MC", "ET": "EG", "MA": "MA", "TN": "TN", "DZ": "DZ", "ZA": "ZA",
}


def show(value: Any, limit: int = 60) -> str:
    """repr() of a value, cut short so a 10 kB field does not become a 10 kB header."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


def require(doc: Mapping[str, Any], name: str, where: str = "") -> Any:
    if name not in doc:
        raise MalformedError(f"missing field {where}{name}", field=name)
    value = doc[name]
    if value is None:
        raise EmptyValueError(f"field {where}{name} is null", field=name)
    return value


def string(doc: Mapping[str, Any], name: str, *, required: bool = True, allow_empty: bool = False,
           max_chars: int = MAX_STRING_CHARS, where: str = "") -> str | None:
    """A string field: present (unless optional), of type string, not empty, not too long."""
    if not required and doc.get(name) is None:
        return None
    value = require(doc, name, where)
    if not isinstance(value, str):
        raise MalformedError(f"field {where}{name} must be a string, got {show(value)}", field=name)
    if len(value) > max_chars:
        raise OversizedFieldError(f"field {where}{name} has {len(value)} characters, more than {max_chars}: "
                                  f"{show(value)}", field=name)
    if not allow_empty and not value.strip():
        raise EmptyValueError(f"field {where}{name} is empty: {show(value)}", field=name)
    return value


def number(doc: Mapping[str, Any], name: str, *, required: bool = True, lo: float | None = None,
           hi: float | None = None, positive: bool = False, where: str = "") -> float | None:
    """A finite number field (bool is not a number), optionally within [lo, hi] or > 0."""
    if not required and doc.get(name) is None:
        return None
    value = require(doc, name, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedError(f"field {where}{name} must be a number, got {show(value)}", field=name)
    try:
        value = float(value)
    except OverflowError as exc:  # an int beyond float range
        raise ImpossibleValueError(f"field {where}{name}={show(value)} is not a finite number", field=name) from exc
    if not math.isfinite(value):
        raise ImpossibleValueError(f"field {where}{name}={value!r} is not a finite number", field=name)
    if positive and value <= 0:
        raise ImpossibleValueError(f"field {where}{name}={value!r} must be > 0", field=name)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise OutOfRangeError(f"field {where}{name}={value!r} outside {lo}..{hi}", field=name)
    return value


def integer(doc: Mapping[str, Any], name: str, where: str = "") -> int:
    value = require(doc, name, where)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)  # JSON "2.0": JSON Schema counts it as an integer
        raise MalformedError(f"field {where}{name} must be an integer, got {show(value)}", field=name)
    return value


def mapping(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = require(doc, name)
    if not isinstance(value, dict):
        raise MalformedError(f"field {name} must be an object, got {show(value)}", field=name)
    return value


def choice(doc: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = require(doc, name)
    if not isinstance(value, str):
        raise MalformedError(f"field {name} must be a string, got {show(value)}", field=name)
    if value not in allowed:
        raise OutOfRangeError(f"field {name}={show(value)} not one of {', '.join(allowed)}", field=name)
    return value


def latitude_longitude(lat: float, lon: float, where: str = "") -> None:
    if not -90.0 <= lat <= 90.0:
        raise ImpossibleValueError(f"field {where}lat={lat!r} outside -90..90", field="lat")
    if not -180.0 <= lon <= 180.0:
        raise ImpossibleValueError(f"field {where}lon={lon!r} outside -180..180", field="lon")


def iso_time_us(doc: Mapping[str, Any], name: str) -> int:
    """An ISO-8601 time WITH a UTC offset → UTC microseconds since the epoch."""
    text = string(doc, name)
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadTimestampError(f"field {name}={show(text)} is not an ISO-8601 time", field=name) from exc
    if when.tzinfo is None or when.utcoffset() is None:
        raise BadTimestampError(f"field {name}={show(text)} has no UTC offset", field=name)
    try:
        return (when - _EPOCH) // _ONE_US
    except OverflowError as exc:
        raise BadTimestampError(f"field {name}={show(text)} is out of range", field=name) from exc


def near_broker_time(time_us: Any, record: RawRecord, name: str = "time") -> int:
    """The event time, checked to lie within 24 h of the record's broker timestamp."""
    if isinstance(time_us, bool) or not isinstance(time_us, int):
        raise MalformedError(f"field {name} must be an integer of microseconds, got {show(time_us)}", field=name)
    skew_us = time_us - record.timestamp_ms * 1000
    if abs(skew_us) > MAX_CLOCK_SKEW_US:
        raise BadTimestampError(f"field {name}={time_us} µs is {skew_us / 3.6e9:+.1f} h from the broker "
                                f"timestamp {record.timestamp_ms} ms (limit ±24 h)", field=name)
    return time_us


def plate(doc: Mapping[str, Any], name: str = "plate") -> str:
    """A plate as read → normalised (upper case, letters A-Z and digits only); not empty, ≤ 16 chars raw.

    Its errors never quote the value (a plate must not reach a log or a header in clear: the dead
    letter's own bytes are the only copy)."""
    raw = require(doc, name)
    if not isinstance(raw, str):
        raise MalformedError(f"field {name} must be a string, got {type(raw).__name__}", field=name)
    if len(raw) > MAX_PLATE_CHARS:
        raise OversizedFieldError(f"field {name} has {len(raw)} characters, more than {MAX_PLATE_CHARS}",
                                  field=name)
    if not raw.strip():
        raise EmptyValueError(f"field {name} is empty ({len(raw)} characters)", field=name)
    normalised = normalise_plate(raw)
    if not normalised:
        raise EmptyValueError(f"field {name} ({len(raw)} characters) has no letters or digits", field=name)
    return normalised


def country(doc: Mapping[str, Any], name: str, *, vienna: bool) -> str:
    """A country field → ISO 3166-1 alpha-2 ('' stays '': unread). `vienna`: the field holds
    distinguishing signs (D, A, PL...); otherwise ISO codes (a stray sign is still mapped)."""
    raw = string(doc, name, allow_empty=True)
    code = raw.strip().upper()
    if not code:
        return ""
    iso = normalise_country(code, vienna=vienna)
    if iso is None:
        raise OutOfRangeError(f"field {name}={show(raw)} is not a known country code", field=name)
    return iso


def normalise_country(code: str, *, vienna: bool = True) -> str | None:
    """Distinguishing sign or ISO alpha-2 → ISO alpha-2; None when it is neither."""
    code = code.strip().upper()
    if not vienna and _ISO2.fullmatch(code):
        return code
    mapped = VIENNA_TO_ISO2.get(code)
    if mapped is not None:
        return mapped
    return code if _ISO2.fullmatch(code) else None
