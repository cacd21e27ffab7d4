"""Simulated ICD feeds for both sides: `write_capture` (capture file + ground truth) and
`run_live` (into Kafka in real time). See scenario.ScenarioConfig for what can be tuned."""
from borderfuse.simulator.run import RunSummary, run_live, write_capture
from borderfuse.simulator.scenario import ScenarioConfig, SimulatorError, parse_mix

__all__ = ["RunSummary", "ScenarioConfig", "SimulatorError", "parse_mix", "run_live", "write_capture"]
