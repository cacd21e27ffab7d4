"""Tracking, correlation and incident rules: pure functions over numpy arrays, no I/O, no clock.

- `fusion.reorder.ReorderBuffer`: event-time reorder buffer with a per-source watermark.
- `fusion.kalman`: constant-velocity Kalman maths (batched predict / gate / update).
- `fusion.tracker.Tracker`: multi-sensor multi-target tracker (GNN, M-of-N, coasting, merging).
- `fusion.crossing`, `fusion.loitering`, `fusion.hotlist`: the incident rules' detectors.
- `fusion.rules.load_rules(path) -> RuleSet`: the operator-editable rule set (`fusion/rules.toml`).
- `fusion.engine.FusionEngine(geography, rules).process(items, watermark_us) -> list[Incident]`.
- `fusion.types.Incident`: the ICD incident contract (`to_json_dict()`).
"""
