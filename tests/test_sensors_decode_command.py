"""`borderfuse decode CAPTURE`: counts, dead letters, duplicates, output files."""
import base64
import json

import pytest

from borderfuse.ingest.cli import main
from borderfuse.ingest.plate_key import plate_pseudonymiser
from borderfuse.ingest.settings import load_settings
from sensor_records import record_of


def capture_line(record):
    b64 = lambda raw: None if raw is None else base64.b64encode(raw).decode()  # noqa: E731
    return json.dumps({"topic": record.topic, "partition": record.partition, "offset": record.offset,
                       "timestamp_ms": record.timestamp_ms, "key": b64(record.key), "value": b64(record.value)})


@pytest.fixture
def capture(tmp_path):
    good = [record_of(name, offset=i) for i, name in enumerate(["pl_radar", "de_radar", "pl_anpr_v1", "de_uav"])]
    bad = record_of("de_camera", offset=9)
    bad = type(bad)(bad.topic, 0, 9, bad.timestamp_ms, bad.key, b"{oops")
    hotlist = type(bad)("shared.hotlist", 0, 0, bad.timestamp_ms, b"PL:LU14958", None)
    lines = [capture_line(r) for r in good + [good[0], bad, hotlist]]  # good[0] delivered twice
    path = tmp_path / "capture.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_decode_prints_counts_dead_letters_and_writes_files(capture, tmp_path, capsys):
    out, dlq = tmp_path / "obs.jsonl", tmp_path / "dlq.jsonl"
    assert main(["decode", str(capture), "--out", str(out), "--dlq", str(dlq), "--batch", "2"]) == 0
    text = capsys.readouterr().out
    assert "dead letters: 1" in text
    assert "de.camera.detections[0]@9  malformed: value is not JSON" in text
    assert "duplicates dropped: 1" in text and "records/s" in text
    observations = [json.loads(line) for line in out.read_text().splitlines()]
    assert [o["sensor_id"] for o in observations] == ["PL-R1", "DE-R1", "PL-ANPR-STADT-E", "DE-U1"]
    # plates leave decoding only as the settings' keyed pseudonym
    plates = plate_pseudonymiser(load_settings(None))
    assert observations[2]["plate"] == plates.pseudonym("LU14958") and observations[0]["time"].endswith("Z")
    assert "LU14958" not in out.read_text() and "LU14958" not in text
    [letter] = [json.loads(line) for line in dlq.read_text().splitlines()]
    assert letter["topic"] == "de.camera.detections.dlq" and base64.b64decode(letter["value"]) == b"{oops"
    assert letter["headers"]["dlq.error.type"] == "malformed" and letter["headers"]["dlq.source.offset"] == "9"


def test_missing_capture_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["decode", str(tmp_path / "missing.jsonl")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_help_tells_the_truth(capsys):
    with pytest.raises(SystemExit):
        main(["decode", "--help"])
    text = capsys.readouterr().out
    assert "--dlq" in text and "--out" in text and "dead letters" in text
