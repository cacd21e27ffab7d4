"""Rules changed in the running service (`borderfuse rules apply`), on a real broker: half the sample,
then drone crossings disabled live, a kill -9, the rest of the sample. No drone incident after the
switch, everything before it stays, the change is audited, the restart keeps the new rules; a broken
rules file changes nothing and says why."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from borderfuse.capture.files import read_capture
from borderfuse.capture.publish import publish_records
from borderfuse.fusion.rules import DEFAULT_RULES_FILE
from borderfuse.ingest.incident_feed import committed_total, read_incidents, read_topics
from borderfuse.ingest.service import FusionService
from borderfuse.ingest.acls import provision
from borderfuse.ingest.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parent.parent


def wait_until(predicate, timeout_s: float, what: str, log: Path):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "borderfuse", *args], env={**os.environ, **env}, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_rules_applied_live_switch_at_a_boundary_and_survive_kill_9(kafka_broker_factory, sample_capture, tmp_path):
    broker = kafka_broker_factory()
    # The service runs as borderfuse, `rules` as ops (its default principal), checks as admin, under the ACLs.
    env = {**broker.env("borderfuse"), "BORDERFUSE_KAFKA__GROUP_ID": "live-rules",
           "BORDERFUSE_SERVICE__TRANSACTION_INTERVAL_MS": "300"}
    admin = broker.client_config()
    provision(load_settings(environ=env))
    probe = FusionService(load_settings(environ=env))
    probe.ensure_topics()
    records = list(read_capture(sample_capture))
    half = len(records) // 2
    assert records[half].timestamp_ms < 1_795_299_411_000, "the sample's drone crossing is in the second half"
    log = tmp_path / "run.log"

    def start() -> subprocess.Popen:
        with open(log, "ab") as err:
            return subprocess.Popen([sys.executable, "-m", "borderfuse", "run", "--no-metrics"],
                                    env={**os.environ, **env}, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)

    def audit() -> list[dict]:
        return [json.loads(r.value) for r in read_topics(broker.bootstrap, ["borderfuse.audit"], timeout_s=10,
                                                             security=broker.client_config("ops"))]

    proc = start()
    try:
        publish_records(broker.bootstrap, records[:half], security=admin)
        wait_until(lambda: committed_total(broker.bootstrap, "live-rules", security=admin) >= half, 300,
                   "the first half", log)
        before = {d["incident_id"] for d in read_incidents(broker.bootstrap, probe.sector_topic.values(),
                                                           security=admin)}
        # A broken file is refused before anything is sent, naming file, section and key.
        broken = tmp_path / "broken.toml"
        broken.write_text("[drone_crossing]\nenabled = 'nope'\n")
        refused = cli(env, "rules", "apply", str(broken))
        assert refused.returncode == 2 and "broken.toml" in refused.stderr and "[drone_crossing] enabled" in refused.stderr
        # The real change: drone crossings off.
        changed = tmp_path / "no-drones.toml"
        changed.write_text(DEFAULT_RULES_FILE.read_text().replace("[drone_crossing]\nenabled = true",
                                                                  "[drone_crossing]\nenabled = false"))
        applied = cli(env, "rules", "apply", str(changed), "--by", "operator-7")
        assert applied.returncode == 0, applied.stderr
        wait_until(lambda: any(a["what"] == "rules.applied" for a in audit()), 60, "the audit record", log)
        (record,) = [a for a in audit() if a["what"] == "rules.applied"]
        assert record["who"] == "operator-7" and record["from_version"] == "settings"
        assert {"key": "drone_crossing.enabled", "from": True, "to": False} in record["changes"]
        # kill -9 after the switch: the restart resumes with the new rules (they are in the snapshot).
        time.sleep(2)
        proc.kill()
        proc.wait(30)
        proc = start()
        publish_records(broker.bootstrap, records[half:], security=admin)
        wait_until(lambda: committed_total(broker.bootstrap, "live-rules", security=admin) >= len(records), 300,
                   "the rest", log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    after = read_incidents(broker.bootstrap, probe.sector_topic.values(), security=admin)
    assert before <= {d["incident_id"] for d in after}, "everything raised before the switch stays"
    assert [d for d in after if d["type"] == "drone_crossing"] == []
    assert {d["type"] for d in after} >= {"border_crossing", "hotlist_vehicle", "loitering"}
    shown = cli(env, "rules", "show")
    assert shown.returncode == 0 and "operator-7" in shown.stdout
    assert "rules " in log.read_text() and "in force" in log.read_text()
