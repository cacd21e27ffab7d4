"""`borderfuse replay`: deterministic files, dead letters, tracks, and the sample scenario's score."""
import importlib.util
import json
from pathlib import Path

import pytest

from borderfuse.ingest.cli import main

SCENARIO = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample"
SCORER = SCENARIO.parent.parent / "tools" / "score_incidents.py"
needs_sample = pytest.mark.skipif(not (SCENARIO / "capture.jsonl.gz").exists(), reason="sample scenario not present")


def _replay(tmp_path: Path, name: str) -> dict[str, Path]:
    files = {k: tmp_path / f"{name}.{k}.jsonl" for k in ("out", "dlq", "tracks")}
    rc = main(["replay", str(SCENARIO / "capture.jsonl.gz"), "--quiet"]
              + [a for k, p in files.items() for a in (f"--{k}", str(p))])
    assert rc == 0
    return files


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    return _replay(tmp, "a"), _replay(tmp, "b")


@needs_sample
@pytest.mark.slow
def test_two_replays_are_byte_identical(two_runs):
    a, b = two_runs
    for kind in ("out", "dlq", "tracks"):
        assert a[kind].read_bytes() == b[kind].read_bytes(), kind
    assert a["out"].stat().st_size > 0 and a["tracks"].stat().st_size > 0


@needs_sample
@pytest.mark.slow
def test_incident_lines_carry_the_contract_fields_first(two_runs):
    lines = [json.loads(x) for x in two_runs[0]["out"].read_text().splitlines()]
    assert lines
    for doc in lines:
        assert list(doc)[:8] == ["incident_id", "type", "sector", "time", "lat", "lon", "track_id", "sources"]
        assert doc["time"].endswith("Z") and doc["sources"] == sorted(doc["sources"])


@needs_sample
@pytest.mark.slow
def test_dead_letter_lines_are_capture_records_with_the_error(two_runs):
    lines = [json.loads(x) for x in two_runs[0]["dlq"].read_text().splitlines()]
    assert len(lines) == 17
    for doc in lines:
        assert {"topic", "partition", "offset", "timestamp_ms", "key", "value", "error_type", "error_message"} <= set(doc)
        assert doc["dlq_topic"] == doc["topic"] + ".dlq"


@needs_sample
@pytest.mark.slow
@pytest.mark.skipif(not SCORER.exists(), reason="scorer not present")
def test_sample_scenario_scores(two_runs):
    spec = importlib.util.spec_from_file_location("score_incidents", SCORER)
    scorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scorer)
    truth = json.loads((SCENARIO / "truth.json").read_text())
    preds, bad, _withdrawn = scorer.load_predictions(two_runs[0]["out"])
    result = scorer.score(truth, preds)
    assert bad == 0
    assert result["f1"] >= 0.95, result
    assert result["wrong_sector"] == 0 and result["both_sides_fused"] >= 0.9
    assert all(v["dup"] == 0 for v in result["per_type"].values())
    assert not [fa for fa in result["false_alarms"] if fa["why"] != "unexplained"]


def test_missing_capture_is_a_clear_error(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_rules_file_names_the_key(tmp_path, capsys):
    rules = tmp_path / "r.toml"
    rules.write_text("[loitering]\nradius = 3\n")
    assert main(["replay", str(tmp_path / "x.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--rules", str(rules)]) == 2
    assert "radius" in capsys.readouterr().err
