"""sensors.dlq.dead_letter_headers."""
from borderfuse.sensors.base import ImpossibleValueError, RawRecord
from borderfuse.sensors.dlq import dead_letter_headers, dead_letter_topic


def test_headers_name_error_and_source():
    record = RawRecord("pl.radar.plots", 2, 2185, 0, b"PL-R1", b"\x00")
    error = ImpossibleValueError("field range_m=-50.0 must be > 0").locate(record)
    headers = dict(dead_letter_headers(record, error))
    assert headers == {
        "dlq.error.type": b"impossible_value",
        "dlq.error.message": b"field range_m=-50.0 must be > 0",
        "dlq.source.topic": b"pl.radar.plots",
        "dlq.source.partition": b"2",
        "dlq.source.offset": b"2185",
    }
    assert dead_letter_topic(record.topic) == "pl.radar.plots.dlq"


def test_message_is_bounded():
    record = RawRecord("t", 0, 0, 0, None, None)
    headers = dict(dead_letter_headers(record, ImpossibleValueError("é" * 5000)))
    assert len(headers["dlq.error.message"]) <= 1024
