"""sensors.decode.RecordDecoder: every feed's valid records → expected observations; every ICD
bad-input kind → its typed DecodeError, located and saying what was wrong."""
import json
import math
import shutil

import numpy as np
import pytest

from borderfuse.geo import frames
from borderfuse.geo.frames import GeoError
from borderfuse.geo.geography import Geography
from borderfuse.geo.polar import GEOD
from borderfuse.sensors import base as b
from borderfuse.sensors.decode import RecordDecoder
from sensor_records import (
    EVENT_US, GEO_DIR, SCHEMAS_DIR, T0_MS, VALID_DOCS, de_record, record_of, valid_doc, valid_records,
)

DROP = object()
HOUR_US = 3600 * 1_000_000


@pytest.fixture(scope="module")
def geo():
    return Geography.load(GEO_DIR)


@pytest.fixture(scope="module")
def decoder(geo):
    return RecordDecoder(geo, SCHEMAS_DIR)


def changed(name, **changes):
    doc = valid_doc(name)
    for key, value in changes.items():
        if value is DROP:
            del doc[key]
        else:
            doc[key] = value
    return record_of(name, doc)


def raw(name, mutate):
    rec = record_of(name)
    return b.RawRecord(rec.topic, rec.partition, rec.offset, rec.timestamp_ms, rec.key, mutate(rec.value))


# --- valid records ---

EXPECTED = {
    "pl_radar": dict(side="PL", sensor_id="PL-R1", sensor_kind="radar", cls=None, confidence=None, local_id=None),
    "pl_camera": dict(side="PL", sensor_id="PL-C1", sensor_kind="camera", cls="person", confidence=0.75,
                      local_id="PL-C1-00042"),
    "pl_uav": dict(side="PL", sensor_id="PL-U1", sensor_kind="uav", cls="vehicle", confidence=0.5),
    "pl_anpr_v1": dict(side="PL", sensor_id="PL-ANPR-STADT-E", sensor_kind="anpr", cls="vehicle", confidence=0.875,
                       plate="LU14958", country="DE", direction="DE->PL"),
    "pl_anpr_v2": dict(side="PL", sensor_id="PL-ANPR-A12-E", sensor_kind="anpr", cls="vehicle", confidence=0.5,
                       plate="WX1234A", country="PL", direction="PL->DE"),
    "de_radar": dict(side="DE", sensor_id="DE-R1", sensor_kind="radar", cls=None, confidence=0.8, local_id="T0260",
                     status="confirmed"),
    "de_camera": dict(side="DE", sensor_id="DE-C1", sensor_kind="camera", cls="person", confidence=0.875,
                      local_id="DE-C1-00001"),
    "de_uav": dict(side="DE", sensor_id="DE-U1", sensor_kind="uav", cls="drone", confidence=0.625),
    "de_anpr": dict(side="DE", sensor_id="DE-ANPR-STADT-W", sensor_kind="anpr", cls="vehicle", confidence=0.745,
                    plate="MQQ402", country="DE", direction="PL->DE"),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_valid_record_fields(decoder, name):
    rec = record_of(name, offset=42)
    [obs] = decoder.decode(rec)
    for field, value in EXPECTED[name].items():
        got = getattr(obs, field)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, field
    assert obs.time_us == EVENT_US
    assert (obs.topic, obs.partition, obs.offset) == (rec.topic, 0, 42)
    assert np.all(np.isfinite(obs.xy)) and np.allclose(obs.cov, obs.cov.T)
    assert np.all(np.linalg.eigvalsh(obs.cov) > 0)
    if name != "de_radar":
        assert obs.velocity is None


@pytest.mark.parametrize("name, expected_xy, variance", [
    ("pl_uav", frames.to_shared(14.57, 52.275), 8.0 ** 2),        # registry sigma_m
    ("de_uav", frames.to_shared(14.52, 52.445), 8.0 ** 2),
    ("de_camera", (468706.6, 5792423.6), 12.0 ** 2),              # the record's own sigma_m
    ("de_radar", (468715.5, 5792432.4), 15.0 ** 2),               # registry sigma_m
    ("de_anpr", (469076.39, 5800064.37), 5.0 ** 2),               # the ANPR camera's site
])
def test_positions_and_isotropic_covariances(decoder, name, expected_xy, variance):
    [obs] = decoder.decode(record_of(name))
    assert np.allclose(obs.xy, np.ravel(expected_xy), atol=1e-6)
    assert np.allclose(obs.cov, variance * np.eye(2))


def test_pl_polar_records_are_placed_geodesically_with_range_bearing_covariance(decoder, geo):
    [radar] = decoder.decode(record_of("pl_radar"))          # PL-R1, 270°, 3000 m
    site = geo.sensors["PL-R1"]
    lon, lat = frames.to_wgs84(*radar.xy)
    az, _, dist = GEOD.inv(site.lon, site.lat, float(lon), float(lat))
    assert dist == pytest.approx(3000.0, abs=1e-3) and az % 360 == pytest.approx(270.0, abs=1e-6)
    radial = (radar.xy - site.xy) / np.linalg.norm(radar.xy - site.xy)
    assert radial @ radar.cov @ radial == pytest.approx(12.0 ** 2, rel=1e-6)
    across = np.array([radial[1], -radial[0]])
    assert across @ radar.cov @ across == pytest.approx((3000 * math.radians(0.25)) ** 2, rel=1e-6)
    [camera] = decoder.decode(record_of("pl_camera"))        # sigma_range_frac 0.08 of 1500 m
    site = geo.sensors["PL-C1"]
    radial = (camera.xy - site.xy) / np.linalg.norm(camera.xy - site.xy)
    assert radial @ camera.cov @ radial == pytest.approx((0.08 * 1500) ** 2, rel=1e-6)


def test_de_radar_velocity_in_the_shared_frame(decoder, geo):
    [obs] = decoder.decode(changed("de_radar", speed_kmh=36.0, course_deg=0.0))  # 10 m/s due TRUE north
    convergence = math.radians(float(frames.grid_bearing_of_true_north(*obs.xy)))
    assert obs.velocity == pytest.approx([10 * math.sin(convergence), 10 * math.cos(convergence)])
    assert obs.velocity[0] > 0.05  # true north is east of grid north here: not ignored


def test_de_camera_without_sigma_uses_the_registry(decoder):
    [obs] = decoder.decode(changed("de_camera", sigma_m=DROP, obj=DROP))
    assert np.allclose(obs.cov, 20.0 ** 2 * np.eye(2)) and obs.local_id is None


@pytest.mark.parametrize("ts", ["2026-11-21T23:00:00.500+01:00", "2026-11-22T00:00:00.500+02:00",
                                "2026-11-21T22:00:00.500Z", "2026-11-21T22:00:00.500+00:00",
                                "2026-11-21T21:30:00.500-00:30"])
def test_de_times_with_any_offset_become_utc_microseconds(decoder, ts):
    assert decoder.decode(changed("de_uav", ts=ts))[0].time_us == EVENT_US


@pytest.mark.parametrize("country, iso", [("D", "DE"), ("PL", "PL"), ("CZ", "CZ"), ("UA", "UA"), ("LT", "LT"),
                                          ("SK", "SK"), ("A", "AT"), ("NL", "NL"), ("F", "FR"), ("I", "IT"),
                                          ("H", "HU"), ("B", "BE"), ("CH", "CH"), ("GB", "GB"), ("UK", "GB"),
                                          ("", ""), ("d", "DE")])
def test_pl_anpr_vienna_signs_become_iso(decoder, country, iso):
    assert decoder.decode(changed("pl_anpr_v1", country=country))[0].country == iso


def test_outside_every_sector_is_not_a_dead_letter(decoder, geo):
    [obs] = decoder.decode(changed("pl_radar", azimuth_deg=90.0, range_m=11_500.0))
    assert list(geo.sector_of(*obs.xy)) == [""]


def test_batch_equals_one_by_one(decoder):
    records = list(valid_records().values())
    records += [changed("pl_radar", range_m=-1.0), changed("de_uav", lat=91.0), changed("pl_uav", lat=14.57, lon=52.275)]
    records += [record_of(name, offset=i) for i, name in enumerate(VALID_DOCS)]
    observations, dead = decoder.decode_batch(records)
    one_by_one, errors = [], []
    for rec in records:
        try:
            one_by_one += decoder.decode(rec)
        except b.DecodeError as exc:
            errors.append((rec, type(exc)))
    assert [(o.topic, o.offset, tuple(o.xy), o.time_us) for o in observations] == \
           [(o.topic, o.offset, tuple(o.xy), o.time_us) for o in one_by_one]
    assert [(r, type(e)) for r, e in dead] == errors and len(errors) == 3


def test_topics_and_hotlist_is_not_a_sensor_feed(decoder):
    assert set(decoder.topics) == {t for t, _, _ in VALID_DOCS.values()}
    with pytest.raises(b.UnknownTopicError, match="decode_hotlist"):
        decoder.decode(b.RawRecord("shared.hotlist", 0, 0, T0_MS, b"PL:X1", b"{}"))
    with pytest.raises(b.UnknownTopicError):
        decoder.decode(b.RawRecord("nope", 0, 0, T0_MS, None, b"{}"))


def test_registry_without_accuracy_fails_at_start_up(tmp_path):
    shutil.copytree(GEO_DIR, tmp_path / "geo")
    path = tmp_path / "geo" / "sensors.json"
    doc = json.loads(path.read_text())
    del next(s for s in doc["sensors"] if s["id"] == "PL-R1")["sigma_azimuth_deg"]
    path.write_text(json.dumps(doc))
    with pytest.raises(GeoError, match="PL-R1"):
        RecordDecoder(Geography.load(tmp_path / "geo"), SCHEMAS_DIR)


# --- bad input: one row per ICD bad-input kind and feed ---

def _set_bytes(old, new):
    return lambda value: value.replace(old, new, 1)


BAD = [
    # framing and schemas (PL)
    ("truncated avro", lambda: raw("pl_radar", lambda v: v[:-3]), b.MalformedError, "does not decode"),
    ("truncated to header", lambda: raw("pl_camera", lambda v: v[:5]), b.MalformedError, "does not decode"),
    ("trailing bytes", lambda: raw("pl_uav", lambda v: v + b"\x00\x01"), b.MalformedError, "2 trailing bytes"),
    ("bad magic byte", lambda: raw("pl_radar", lambda v: b"\x07" + v[1:]), b.FramingError, "0x07"),
    ("shorter than header", lambda: raw("pl_radar", lambda v: v[:3]), b.FramingError, "3 bytes"),
    ("unknown schema id", lambda: raw("pl_radar", lambda v: v[:1] + (999).to_bytes(4, "big") + v[5:]),
     b.UnknownSchemaError, "999"),
    ("schema of another topic", lambda: raw("pl_radar", lambda v: v[:1] + (102).to_bytes(4, "big") + v[5:]),
     b.UnknownSchemaError, "pl.sg.camera.Detection"),
    ("avro string not utf-8", lambda: raw("pl_radar", _set_bytes(b"PL-R1", b"PL-\xff1")), b.MalformedError,
     "UnicodeDecodeError"),
    ("empty value", lambda: raw("pl_anpr_v1", lambda v: b""), b.EmptyValueError, "empty"),
    ("null value", lambda: raw("de_radar", lambda v: None), b.EmptyValueError, "null"),
    # DE parsing
    ("not utf-8", lambda: raw("de_radar", lambda v: b"\xff" + v), b.MalformedError, "not UTF-8"),
    ("utf-16 json", lambda: raw("de_radar", lambda v: v.decode().encode("utf-16")), b.MalformedError, "not UTF-8"),
    ("not json", lambda: raw("de_camera", lambda v: v[:-5]), b.MalformedError, "not JSON"),
    ("json array", lambda: raw("de_camera", lambda v: b"[1, 2]"), b.MalformedError, "not an object"),
    ("json NaN", lambda: raw("de_uav", _set_bytes(b'"lat": 52.445', b'"lat": NaN')), b.ImpossibleValueError, "NaN"),
    ("json Infinity", lambda: raw("de_radar", _set_bytes(b'"speed_kmh": 36.0', b'"speed_kmh": -Infinity')),
     b.ImpossibleValueError, "Infinity"),
    ("json overflow to inf", lambda: raw("de_radar", _set_bytes(b'"speed_kmh": 36.0', b'"speed_kmh": 1e999')),
     b.ImpossibleValueError, "speed_kmh=inf"),
    ("unknown DE version", lambda: changed("de_radar", schema="de.bpol.radar.track/2"), b.UnknownSchemaError,
     "radar.track/2"),
    ("DE schema of another topic", lambda: de_record("de.radar.tracks", valid_doc("de_camera")), b.UnknownSchemaError,
     "belongs on de.camera.detections"),
    ("DE schema missing", lambda: changed("de_uav", schema=DROP), b.MalformedError, "missing field schema"),
    ("missing field", lambda: changed("de_radar", ts=DROP), b.MalformedError, "missing field ts"),
    ("missing nested field", lambda: changed("de_camera", pos={"e": 468706.6}), b.MalformedError, "pos.n"),
    ("wrong type", lambda: changed("de_radar", speed_kmh="fast"), b.MalformedError, "speed_kmh must be a number"),
    ("bool is not a number", lambda: changed("de_camera", score=True), b.MalformedError, "score must be a number"),
    ("pos not an object", lambda: changed("de_radar", pos=[1, 2]), b.MalformedError, "pos must be an object"),
    ("lane not an integer", lambda: changed("de_anpr", lane="two"), b.MalformedError, "lane"),
    ("huge integer", lambda: raw("de_anpr", _set_bytes(b'"lane": 2', b'"lane": ' + b"9" * 5000)), b.MalformedError,
     "usable JSON"),
    # impossible values
    ("range zero", lambda: changed("pl_radar", range_m=0.0), b.ImpossibleValueError, "range_m=0.0"),
    ("range negative", lambda: changed("pl_camera", range_m=-50.0), b.ImpossibleValueError, "range_m=-50.0"),
    ("range NaN", lambda: changed("pl_radar", range_m=float("nan")), b.ImpossibleValueError, "range_m=nan"),
    ("azimuth inf", lambda: changed("pl_radar", azimuth_deg=float("inf")), b.ImpossibleValueError, "azimuth_deg=inf"),
    ("doppler NaN", lambda: changed("pl_radar", doppler_mps=float("nan")), b.ImpossibleValueError, "doppler_mps"),
    ("confidence NaN", lambda: changed("pl_uav", confidence=float("nan")), b.ImpossibleValueError, "confidence"),
    ("latitude 91", lambda: changed("pl_uav", lat=91.5), b.ImpossibleValueError, "lat=91.5"),
    ("latitude -91", lambda: changed("de_uav", lat=-91.0), b.ImpossibleValueError, "lat=-91.0"),
    ("longitude 181", lambda: changed("de_uav", lon=181.0), b.ImpossibleValueError, "lon=181.0"),
    ("uav lat/lon swapped", lambda: changed("pl_uav", lat=14.57, lon=52.275), b.ImpossibleValueError, "PL-U1's site"),
    ("uav beyond 1.5 x range", lambda: changed("de_uav", lat=52.48), b.ImpossibleValueError, "DE-U1's site"),
    ("plot beyond 1.5 x range", lambda: changed("pl_radar", range_m=18_500.0), b.ImpossibleValueError, "PL-R1's site"),
    ("DE easting/northing swapped", lambda: changed("de_camera", pos={"e": 5792423.6, "n": 468706.6}),
     b.ImpossibleValueError, "swapped axes"),
    ("DE position far away", lambda: changed("de_radar", pos={"e": 468715.5 + 20_000, "n": 5792432.4}),
     b.ImpossibleValueError, "DE-R1's site"),
    ("sigma_m zero", lambda: changed("de_camera", sigma_m=0.0), b.ImpossibleValueError, "sigma_m"),
    # schema ranges
    ("bearing > 360", lambda: changed("pl_camera", bearing_deg=361.0), b.OutOfRangeError, "bearing_deg=361.0"),
    ("azimuth < 0", lambda: changed("pl_radar", azimuth_deg=-1.0), b.OutOfRangeError, "azimuth_deg=-1.0"),
    ("confidence > 1", lambda: changed("pl_camera", confidence=1.5), b.OutOfRangeError, "confidence=1.5"),
    ("anpr confidence < 0", lambda: changed("pl_anpr_v2", confidence=-0.25), b.OutOfRangeError, "confidence"),
    ("score > 1", lambda: changed("de_uav", score=1.25), b.OutOfRangeError, "score=1.25"),
    ("conf > 100", lambda: changed("de_anpr", conf=100.5), b.OutOfRangeError, "conf=100.5"),
    ("speed < 0", lambda: changed("de_radar", speed_kmh=-1.0), b.OutOfRangeError, "speed_kmh=-1.0"),
    ("course > 360", lambda: changed("de_radar", course_deg=400.0), b.OutOfRangeError, "course_deg=400.0"),
    ("quality > 1", lambda: changed("de_radar", quality=2.0), b.OutOfRangeError, "quality=2.0"),
    ("status unknown", lambda: changed("de_radar", status="dead"), b.OutOfRangeError, "status='dead'"),
    ("class unknown", lambda: changed("de_camera", cls="tank"), b.OutOfRangeError, "cls='tank'"),
    ("dir unknown", lambda: changed("de_anpr", dir="in"), b.OutOfRangeError, "dir='in'"),
    ("country unknown", lambda: changed("pl_anpr_v1", country="XYZ"), b.OutOfRangeError, "country='XYZ'"),
    ("nat not ISO", lambda: changed("de_anpr", nat="Germany"), b.OutOfRangeError, "nat='Germany'"),
    # sensors
    ("unknown sensor", lambda: changed("pl_radar", sensor_id="PL-R9"), b.UnknownSensorError, "PL-R9"),
    ("unknown platform", lambda: changed("de_uav", platform="DE-U7"), b.UnknownSensorError, "DE-U7"),
    ("sensor of the other side", lambda: changed("pl_radar", sensor_id="DE-R1"), b.UnknownSensorError,
     "registered for topic de.radar.tracks"),
    ("sensor of another feed", lambda: changed("de_camera", sensor="DE-R1"), b.UnknownSensorError,
     "registered for topic de.radar.tracks"),
    # timestamps
    ("unparseable ts", lambda: changed("de_anpr", ts="yesterday"), b.BadTimestampError, "ts='yesterday'"),
    ("ts without offset", lambda: changed("de_radar", ts="2026-11-21T23:00:00.500"), b.BadTimestampError,
     "no UTC offset"),
    ("ts not a string", lambda: changed("de_radar", ts=1795298400), b.MalformedError, "ts must be a string"),
    ("ts 25 h early", lambda: changed("de_camera", ts="2026-11-20T22:00:00.500+01:00"), b.BadTimestampError, "24 h"),
    ("time 25 h late", lambda: changed("pl_radar", time=EVENT_US + 25 * HOUR_US), b.BadTimestampError, "24 h"),
    ("time zero", lambda: changed("pl_anpr_v1", time=0), b.BadTimestampError, "24 h"),
    # sizes and empties
    ("plate of 17", lambda: changed("pl_anpr_v1", plate="A" * 17), b.OversizedFieldError, "plate has 17"),
    ("plate of 5000", lambda: changed("de_anpr", plate="X" * 5000), b.OversizedFieldError, "plate has 5000"),
    ("sensor id of 300", lambda: changed("pl_radar", sensor_id="P" * 300), b.OversizedFieldError, "sensor_id has 300"),
    ("track of 300", lambda: changed("de_radar", track="7" * 300), b.OversizedFieldError, "track has 300"),
    ("image_ref of 257", lambda: changed("pl_anpr_v2", image_ref="i" * 257), b.OversizedFieldError, "image_ref"),
    ("object id of 1000", lambda: changed("pl_camera", object_id="o" * 1000), b.OversizedFieldError, "object_id"),
    ("empty sensor id", lambda: changed("pl_camera", sensor_id=""), b.EmptyValueError, "sensor_id is empty"),
    ("blank sensor", lambda: changed("de_radar", sensor="  "), b.EmptyValueError, "sensor is empty"),
    ("null sensor", lambda: changed("de_uav", platform=None), b.EmptyValueError, "platform is null"),
    ("empty plate", lambda: changed("de_anpr", plate=""), b.EmptyValueError, "plate is empty"),
    ("plate without characters", lambda: changed("pl_anpr_v2", plate="- -"), b.EmptyValueError, "no letters"),
    ("empty object id", lambda: changed("pl_camera", object_id=""), b.EmptyValueError, "object_id"),
    ("empty track", lambda: changed("de_radar", track=""), b.EmptyValueError, "track"),
    ("empty obj", lambda: changed("de_camera", obj=""), b.EmptyValueError, "obj"),
]


@pytest.mark.parametrize("make, error_type, fragment", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_input_raises_typed_located_error(decoder, make, error_type, fragment):
    rec = make()
    with pytest.raises(error_type) as info:
        decoder.decode(rec)
    err = info.value
    assert fragment in err.reason
    assert (err.topic, err.partition, err.offset) == (rec.topic, rec.partition, rec.offset)
    assert f"{rec.topic}[0]@{rec.offset}" in str(err)
    assert isinstance(err.kind, str) and err.kind != b.DecodeError.kind
    _, dead = decoder.decode_batch([rec])
    assert [type(e) for _, e in dead] == [error_type]
