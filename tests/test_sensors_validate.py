"""borderfuse.sensors.validate: normalisation and field checks."""
import pytest

from borderfuse.sensors import base as b
from borderfuse.sensors import validate as v
from sensor_records import T0_MS


@pytest.mark.parametrize("raw, plate", [("FF-AB 123", "FFAB123"), ("lu 14958", "LU14958"), ("wx.1234a", "WX1234A"),
                                        (" PO 7RR12 ", "PO7RR12"), ("M–QQ 402", "MQQ402"), ("ÄB 1", "B1")])
def test_normalise_plate(raw, plate):
    assert v.normalise_plate(raw) == plate


@pytest.mark.parametrize("code, vienna, iso", [
    ("D", True, "DE"), ("A", True, "AT"), ("UK", True, "GB"), ("GB", True, "GB"), ("PL", True, "PL"),
    ("FIN", True, "FI"), ("SLO", True, "SI"), ("RUS", True, "RU"), ("UA", True, "UA"), ("cz", True, "CZ"),
    ("DE", False, "DE"), ("PL", False, "PL"), ("D", False, "DE"), ("ET", False, "ET"), ("ET", True, "EG"),
    ("XYZ", True, None), ("1", True, None), ("DEU", False, None),
])
def test_normalise_country(code, vienna, iso):
    assert v.normalise_country(code, vienna=vienna) == iso


@pytest.mark.parametrize("text, micros", [
    ("1970-01-01T00:00:00Z", 0), ("1970-01-01T01:00:00.000001+01:00", 1), ("2026-11-21T23:00:00.500+01:00", T0_MS * 1000 + 500_000),
])
def test_iso_time_us(text, micros):
    assert v.iso_time_us({"ts": text}, "ts") == micros


@pytest.mark.parametrize("text, error", [("", b.EmptyValueError), ("2026-13-01T00:00:00Z", b.BadTimestampError),
                                          ("2026-11-21", b.BadTimestampError), ("2026-11-21T25:00:00Z", b.BadTimestampError),
                                          ("x" * 100, b.BadTimestampError), ("x" * 257, b.OversizedFieldError)])
def test_bad_iso_times(text, error):
    with pytest.raises(error):
        v.iso_time_us({"ts": text}, "ts")


def test_near_broker_time_limits():
    rec = b.RawRecord("t", 0, 0, T0_MS, None, b"")
    day = 24 * 3600 * 1_000_000
    assert v.near_broker_time(T0_MS * 1000 + day, rec) == T0_MS * 1000 + day
    with pytest.raises(b.BadTimestampError, match=r"\+24.0 h"):
        v.near_broker_time(T0_MS * 1000 + day + 1, rec)
    with pytest.raises(b.MalformedError):
        v.near_broker_time(1.5, rec)


@pytest.mark.parametrize("kwargs, value, error", [
    ({}, "x", b.MalformedError), ({}, None, b.EmptyValueError), ({}, float("nan"), b.ImpossibleValueError),
    ({}, 10 ** 400, b.ImpossibleValueError), ({"positive": True}, 0, b.ImpossibleValueError),
    ({"lo": 0, "hi": 1}, 1.01, b.OutOfRangeError), ({"lo": 0}, -0.01, b.OutOfRangeError),
])
def test_number_checks(kwargs, value, error):
    with pytest.raises(error) as info:
        v.number({"f": value}, "f", **kwargs)
    assert info.value.field == "f" and "field f" in info.value.reason


def test_optional_fields_and_long_values_are_shown_short():
    assert v.number({}, "f", required=False) is None and v.string({"s": None}, "s", required=False) is None
    with pytest.raises(b.OversizedFieldError) as info:
        v.string({"s": "y" * 10_000}, "s")
    assert len(info.value.reason) < 200 and "10000" in info.value.reason
