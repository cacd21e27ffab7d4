"""Rules file: the default loads with the ICD's agreed parameters; bad keys are named."""
import pytest

from borderfuse.fusion.rules import RulesError, load_rules, rules_from_mapping


def test_default_rules_carry_the_icd_parameters():
    r = load_rules()
    assert r.loitering.border_distance_m == 300 and r.loitering.duration_s == 300 and r.loitering.radius_m == 150
    assert set(r.border_crossing.classes) == {"person", "vehicle", "unknown"}
    assert r.drone_crossing.classes == ("drone",)
    assert "animal" not in r.border_crossing.classes + r.loitering.classes


@pytest.mark.parametrize("doc, named", [
    ({"loitering": {"radius": 100}}, "radius"),
    ({"loitering": {"radius_m": -5.0}}, "radius_m"),
    ({"loitering": {"radius_m": "far"}}, "radius_m"),
    ({"border_crossing": {"classes": ["person", "alien"]}}, "alien"),
    ({"border_crossing": {"severity": "meh"}}, "severity"),
    ({"border_crossing": {"enabled": "yes"}}, "enabled"),
    ({"tracker": {"confirm_hits": 2.5}}, "confirm_hits"),
    ({"incidents": {}}, "incidents"),
])
def test_invalid_rules_name_the_bad_key(doc, named):
    with pytest.raises(RulesError, match=named):
        rules_from_mapping(doc, "test.toml")


def test_rules_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "rules.toml"
    bad.write_text("[loitering\n")
    with pytest.raises(RulesError, match="rules.toml"):
        load_rules(bad)
    with pytest.raises(RulesError, match="does not exist"):
        load_rules(tmp_path / "missing.toml")


def test_operator_override_changes_only_that_value(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text("[loitering]\nduration_s = 120\n")
    r = load_rules(f)
    assert r.loitering.duration_s == 120.0 and r.loitering.radius_m == 150.0
