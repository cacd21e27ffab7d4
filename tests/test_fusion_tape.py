"""The tracker tape (fusion.tape): replaying what the tracker did under other decision rules gives the full
pipeline's incidents and track reports byte for byte; a run that asks for anything else is refused."""
from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import attrs
import numpy as np
import pytest

from borderfuse.capture.files import format_record, read_capture
from borderfuse.fusion.rules import load_rules
from borderfuse.fusion.tape import (EVIDENCE, MERGE, SCAN, RecordingTracker, TapeError, TapeMismatch, TapeTracker,
                                    TrackerTape)
from borderfuse.fusion.tracker import Tracker
from borderfuse.ingest.pipeline import Pipeline
from borderfuse.ingest.settings import load_settings
from borderfuse.sensors.topics import HOTLIST_TOPIC
from borderfuse.whatif.cache import decoded_batches

SCENARIOS = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios"
CHUNK = 2000
# A window of each scenario's capture (records start:end, after the hotlist records before it): every kind of
# incident the scenario has (sample: crossings, a drone, loitering, hotlist hits; hard: crossings close
# together, loitering) with merges and late observations, at a fraction of the whole capture's time.
WINDOW = {"sample": (16_000, 57_000), "hard": (60_000, 100_000)}


def _evolve(section: str, **changes):
    return lambda rules: attrs.evolve(rules, **{section: attrs.evolve(getattr(rules, section), **changes)})


# decision-rule variants: none of them touches [tracker], so each must replay the default rules' tape
VARIANTS = {
    "default": lambda rules: rules,
    "loitering off": _evolve("loitering", enabled=False),
    "drone crossing off": _evolve("drone_crossing", enabled=False),
    # the crossing judgement: side margin, side probability and the class hold at once
    "crossing margin, side probability, class hold": _evolve("crossing", side_margin_m=25.0, side_probability=0.97,
                                                             class_min_hold_s=3.0, class_max_hold_s=8.0),
    "hotlist attach radius 5 m": _evolve("hotlist_vehicle", attach_radius_m=5.0),
}


@pytest.fixture(scope="module")
def settings():
    return load_settings(None)


@pytest.fixture(scope="module", params=sorted(WINDOW))
def scenario(request, tmp_path_factory, settings):
    """(capture window, its decoded-cache folder, the tape recorded under the default rules, that run's output)."""
    source = SCENARIOS / request.param / "capture.jsonl.gz"
    if not source.exists():
        pytest.skip(f"{request.param} scenario not present")
    folder = tmp_path_factory.mktemp(request.param)
    capture = folder / "capture.jsonl.gz"
    start, end = WINDOW[request.param]
    records = [r for i, r in enumerate(itertools.islice(read_capture(source), end))
               if i >= start or r.topic == HOTLIST_TOPIC]
    with gzip.open(capture, "wt", encoding="ascii") as f:
        f.writelines(format_record(r) + "\n" for r in records)
    recorder = RecordingTracker(load_rules(None).tracker)
    output = _run(capture, folder, settings, load_rules(None), recorder)
    recorder.run_out()
    tape = recorder.tape()
    tape.validate("test tape")
    return capture, folder, tape, output


def _run(capture: Path, cache_dir: Path, settings, rules, tracker=None) -> tuple[list[str], list[str]]:
    """(incident lines, track report lines) of the pipeline with `rules` (and `tracker` in place of its own)."""
    pipeline = Pipeline.from_settings(settings, rules=rules, collect_tracks=True)
    if tracker is not None:
        pipeline.engine.tracker = tracker
    incidents, tracks = [], []

    def emit(result) -> None:
        incidents.extend(json.dumps(i.to_json_dict(), separators=(",", ":")) for i in result.incidents)
        tracks.extend(json.dumps(r.to_json_dict(), separators=(",", ":")) for r in pipeline.take_track_reports())

    for batch in decoded_batches(capture, pipeline, settings, chunk=CHUNK, cache_dir=cache_dir, log=lambda m: None):
        emit(pipeline.process_decoded(batch))
    emit(pipeline.flush())
    return incidents, tracks


# The variants that change each window's incidents against the default rules (so that the tape is shown to
# follow the rules, not to repeat the recording); the hard window (no hotlist hit, no drone) runs only these.
CHANGED = {"sample": set(VARIANTS) - {"default"},
           "hard": {"crossing margin, side probability, class hold"}}


@pytest.mark.parametrize("scenario, variant", [(name, variant) for name in sorted(WINDOW) for variant in sorted(VARIANTS)
                                               if name == "sample" or variant in CHANGED[name] | {"default"}],
                         indirect=["scenario"])
def test_tape_output_is_the_full_pipelines_byte_for_byte(scenario, settings, variant, request):
    capture, folder, tape, recorded = scenario
    name = request.node.callspec.params["scenario"]
    rules = VARIANTS[variant](load_rules(None))
    full = _run(capture, folder, settings, rules) if variant != "default" else recorded
    tracker = TapeTracker(rules.tracker, tape)
    replayed = _run(capture, folder, settings, rules, tracker)
    tracker.check_finished()
    assert replayed[0] == full[0]
    assert replayed[1] == full[1]
    assert full[1] and (full[0] != recorded[0]) == (variant in CHANGED[name])


def test_the_tape_covers_merges_late_observations_and_class_evidence(scenario):
    """So that the byte-for-byte tests above exercise every kind of recorded call."""
    _, _, tape, _ = scenario
    kinds = tape.calls[:, 0]
    assert (kinds == SCAN).sum() > 1000
    assert tape.calls[kinds == MERGE, 4].sum() >= 1           # merged pairs
    assert (kinds == EVIDENCE).sum() >= 1                      # late class evidence
    assert (tape.calls[kinds == SCAN, 2] == 1).sum() >= 1     # single-detection scans (late positions among them)
    assert (tape.row_track == -1).sum() > 0 and (tape.row_track >= 0).sum() > 0   # new and updated tracks


# The refusal tests need one scenario's tape, not both.
SAMPLE_ONLY = pytest.mark.parametrize("scenario", ["sample"], indirect=True)


@SAMPLE_ONLY
def test_a_replay_never_gates_or_assigns(scenario, settings, monkeypatch, request):
    capture, folder, tape, recorded = scenario

    def no_association(*args, **kwargs):
        raise AssertionError("the tape tracker ran the association")
    monkeypatch.setattr(Tracker, "_associate", no_association)
    rules = load_rules(None)
    assert _run(capture, folder, settings, rules, TapeTracker(rules.tracker, tape)) == recorded


@SAMPLE_ONLY
def test_another_input_is_refused_at_its_first_different_call(scenario, settings, request):
    capture, folder, tape, _ = scenario
    rules = load_rules(None)
    shifted = TrackerTape(tape.calls.copy(), tape.row_track, tape.row_obs, tape.row_weak, tape.row_x, tape.row_P,
                          tape.merge_pairs)
    scan = int(np.flatnonzero(shifted.calls[:, 0] == SCAN)[50])
    shifted.calls[scan, 2] += 1                           # the tape says one detection more
    with pytest.raises(TapeMismatch, match=f"call {scan + 1} is scan"):
        _run(capture, folder, settings, rules, TapeTracker(rules.tracker, shifted, "the tape"))


@SAMPLE_ONLY
def test_a_run_that_stops_early_or_goes_past_the_end_is_refused(scenario, settings, request):
    capture, folder, tape, _ = scenario
    rules = load_rules(None)
    last_scan = int(np.flatnonzero(tape.calls[:, 0] == SCAN)[-1])
    cut = TrackerTape(tape.calls[:last_scan], tape.row_track, tape.row_obs, tape.row_weak, tape.row_x, tape.row_P,
                      tape.merge_pairs)
    with pytest.raises(TapeMismatch, match="past the tape's end"):
        _run(capture, folder, settings, rules, TapeTracker(rules.tracker, cut))
    # a run that stops early (as `replay --as-live` does: no end-of-input flush) has replayed a prefix of the
    # tape, which is sound; claiming it consumed the whole input is refused
    pipeline = Pipeline.from_settings(settings, rules=rules)
    tracker = pipeline.engine.tracker = TapeTracker(rules.tracker, tape)
    batches = decoded_batches(capture, pipeline, settings, chunk=CHUNK, cache_dir=folder, log=lambda m: None)
    pipeline.process_decoded(next(iter(batches)))
    with pytest.raises(TapeMismatch, match="recorded scans not asked for"):
        tracker.check_finished()


def _with_kind(calls: np.ndarray, old: int, new: int) -> np.ndarray:
    calls = calls.copy()
    calls[calls[:, 0] == old, 0] = new
    return calls


@pytest.mark.parametrize("damage, message", [
    (lambda t: attrs.evolve(t, row_x=t.row_x[:-1]), "row_x has"),
    (lambda t: attrs.evolve(t, calls=t.calls[:, :5]), "calls table"),
    (lambda t: attrs.evolve(t, merge_pairs=t.merge_pairs[:0]), "do not account"),
    (lambda t: attrs.evolve(t, calls=_with_kind(t.calls, MERGE, 9)), "unknown call kinds"),
])
def test_a_tape_whose_columns_disagree_is_refused(scenario, damage, message):
    _, _, tape, _ = scenario
    with pytest.raises(TapeError, match=message):
        damage(tape).validate("the tape")
