"""`borderfuse diff` end to end on the sample night: disabling loitering loses exactly the one loitering
incident; a wider crossing margin moves crossing times; a broken rules file is refused before any work."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from borderfuse.fusion.rules import DEFAULT_RULES_FILE
from borderfuse.ingest.cli import main
from borderfuse.whatif.runner import Progress

SCENARIO = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample"
needs_sample = pytest.mark.skipif(not (SCENARIO / "capture.jsonl.gz").exists(), reason="sample scenario not present")
DEFAULT = DEFAULT_RULES_FILE.read_text(encoding="utf-8")


def _rules(tmp_path: Path, section: str, key: str, value: str) -> Path:
    """The default rules file with one key of one section set to `value` (a TOML literal), all else as is."""
    lines, current, done = [], None, False
    for line in DEFAULT.splitlines():
        if line.startswith("["):
            current = line.strip()
        elif current == f"[{section}]" and line.split("=")[0].strip() == key and not done:
            line, done = f"{key} = {value}", True
        lines.append(line)
    assert done, f"[{section}] {key} is not in {DEFAULT_RULES_FILE}"
    path = tmp_path / f"{section}.{key}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One decoded cache for the module (never beside ../shared's capture)."""
    return tmp_path_factory.mktemp("decoded")


def _diff(tmp_path: Path, cache_dir: Path, rules_b: Path, *extra: str) -> dict:
    out = tmp_path / "diff.json"
    assert main(["diff", str(SCENARIO / "capture.jsonl.gz"), str(DEFAULT_RULES_FILE), str(rules_b), "--quiet",
                 "--cache-dir", str(cache_dir), "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


@needs_sample
@pytest.mark.slow
def test_loitering_disabled_loses_exactly_the_loitering_incident(tmp_path, cache_dir, capsys):
    b = _rules(tmp_path, "loitering", "enabled", "false")
    html = tmp_path / "diff.html"
    doc = _diff(tmp_path, cache_dir, b, "--truth", str(SCENARIO / "truth.json"), "--html", str(html))
    assert (len(doc["lost"]), len(doc["gained"]), len(doc["changed"])) == (1, 0, 0)
    lost = doc["lost"][0]
    assert lost["type"] == "loitering" and lost["verdict"] == "hit"
    assert {"type", "sector", "time", "lat", "lon", "incident_id", "track_id"} <= set(lost)
    assert doc["rule_changes"] == [{"key": "loitering.enabled", "a": True, "b": False}]
    assert doc["a"]["incidents"] == doc["b"]["incidents"] + 1
    assert doc["a"]["score"]["per_type"]["loitering"]["tp"] == 1
    assert doc["b"]["score"]["per_type"]["loitering"] == {"tp": 0, "fn": 1, "fp": 0, "dup": 0}
    assert doc["b"]["score"]["f1"] < doc["a"]["score"]["f1"]
    table = capsys.readouterr().out
    assert "lost 1, gained 0, changed 0" in table and lost["incident_id"] in table
    page = html.read_text()
    assert "<svg" in page and lost["incident_id"] in page and "S2" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page   # self-contained


@needs_sample
@pytest.mark.slow
def test_a_wider_crossing_margin_moves_crossing_times(tmp_path, cache_dir):
    b = _rules(tmp_path, "crossing", "side_margin_m", "120.0")
    doc = _diff(tmp_path, cache_dir, b)
    assert doc["rule_changes"][0]["key"] == "crossing.side_margin_m"
    moved = [c for c in doc["changed"] if "time" in c["what"]]
    assert moved, "a 120 m margin moves no crossing time"
    for change in moved:
        assert change["time"] != change["was"]["time"] and change["dt_s"] != 0 and change["incident_id"]
    for item in doc["changed"] + doc["lost"] + doc["gained"]:     # only crossings depend on the margin
        assert item["type"] in ("border_crossing", "drone_crossing"), item


@pytest.mark.parametrize("body, named", [
    ("[loitering]\nenabled = \"no\"\n", ["[loitering]", "enabled"]),
    ("[loitering]\nduration_s = -5.0\n", ["[loitering]", "duration_s"]),
    ("[crossing]\nside_margin = 30.0\n", ["[crossing]", "side_margin"]),
    ("[loiter]\nenabled = false\n", ["[loiter]"]),
    ("[border_crossing]\nclasses = [\"person\", \"ufo\"]\n", ["[border_crossing]", "ufo"]),
    ("[tracker\nconfirm_hits = 4\n", ["not valid TOML"]),
])
@pytest.mark.parametrize("side", ["a", "b"])
def test_a_broken_rules_file_is_refused_before_any_work(tmp_path, capsys, body, named, side):
    bad = tmp_path / "bad.toml"
    bad.write_text(body)
    capture = tmp_path / "capture.jsonl.gz"
    capture.write_bytes(b"")            # never read: the refusal comes first
    rules = [str(DEFAULT_RULES_FILE), str(bad)] if side == "b" else [str(bad), str(DEFAULT_RULES_FILE)]
    assert main(["diff", str(capture), *rules, "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("borderfuse diff: ") and len(err.splitlines()) == 1
    for word in [str(bad), *named]:
        assert word in err
    assert not (tmp_path / "cache").exists()


def test_a_missing_capture_is_one_line(tmp_path, capsys):
    assert main(["diff", str(tmp_path / "nope.jsonl"), str(DEFAULT_RULES_FILE), str(DEFAULT_RULES_FILE)]) == 2
    assert "nope.jsonl does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("total, done, elapsed, expected", [
    (1000, 250, 5.0, "diff:  25% 50 records/s, 0m15s left"),
    (4_000_000, 2_000_000, 100.0, "diff:  50% 20,000 records/s, 1m40s left"),
    (1000, 0, 5.0, "diff:   0% 0 records/s, ? left"),
])
def test_progress_line(total, done, elapsed, expected):
    p = Progress(total)
    assert p.line(done, p.started + elapsed) == expected
