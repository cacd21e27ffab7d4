"""sensors.hotlist.decode_hotlist."""
import json

import pytest

from borderfuse.sensors import base as b
from borderfuse.sensors.hotlist import HotlistEntry, HotlistUpdate, decode_hotlist
from sensor_records import T0_MS

VALUE = {"plate": "LU 14958", "country": "PL", "reason": "wanted person's vehicle", "list": "SIS",
         "added": "2026-11-20T23:00:00.000+01:00"}


def rec(key, value, offset=3):
    raw = None if value is None else (value if isinstance(value, bytes) else json.dumps(value).encode())
    return b.RawRecord("shared.hotlist", 0, offset, T0_MS, key, raw)


def test_entry():
    update = decode_hotlist(rec(b"PL:LU14958", VALUE))
    assert update == HotlistUpdate("PL:LU14958", "PL", "LU14958", HotlistEntry(
        "LU 14958", "wanted person's vehicle", "SIS", (T0_MS - 24 * 3600 * 1000) * 1000))


def test_deletion_by_null_value():
    assert decode_hotlist(rec(b"DE:MQQ402", None)) == HotlistUpdate("DE:MQQ402", "DE", "MQQ402", None)


def test_key_and_value_are_normalised():
    value = dict(VALUE, plate="m-qq 402", country="D")
    assert decode_hotlist(rec(b"de:M-QQ 402", value)).key == "DE:MQQ402"


@pytest.mark.parametrize("key, value, error, fragment", [
    (None, VALUE, b.EmptyValueError, "no key"),
    (b"PLLU14958", VALUE, b.MalformedError, "'<country>:<plate>'"),
    (b"\xff:X", VALUE, b.MalformedError, "not UTF-8"),
    (b":LU14958", VALUE, b.EmptyValueError, "empty country"),
    (b"PL:", None, b.EmptyValueError, "key.plate is empty"),
    (b"PL:LU14958", dict(VALUE, plate="LU 14959"), b.MalformedError, "does not match"),
    (b"PL:LU14958", dict(VALUE, country="CZ"), b.MalformedError, "does not match"),
    (b"PL:LU14958", b"{not json", b.MalformedError, "not JSON"),
    (b"PL:LU14958", {k: v for k, v in VALUE.items() if k != "reason"}, b.MalformedError, "missing field reason"),
    (b"PL:LU14958", dict(VALUE, added="soon"), b.BadTimestampError, "added"),
    (b"PL:LU14958", dict(VALUE, reason="r" * 300), b.OversizedFieldError, "reason"),
    (b"PL:" + b"A" * 17, None, b.OversizedFieldError, "key.plate"),
])
def test_bad_hotlist_records(key, value, error, fragment):
    with pytest.raises(error) as info:
        decode_hotlist(rec(key, value))
    assert fragment in info.value.reason and info.value.offset == 3
