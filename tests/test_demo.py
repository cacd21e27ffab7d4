"""`borderfuse demo`: incidents on screen within a minute, Ctrl-C leaves no JVM or temp dir behind."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from borderfuse.devbroker.broker import pid_alive
from borderfuse.demo.command import format_incident

REPO = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^\d\d:\d\d:\d\dZ  S\d\s+(border_crossing|drone_crossing|hotlist_vehicle|loitering)\s+.+\[.*\]$")


@pytest.mark.parametrize("doc, expected", [
    ({"time": "2026-11-21T22:04:05.123456Z", "sector": "S2", "type": "border_crossing", "summary": "person crossed",
      "sources": ["de-radar-1", "pl-cam-2"], "lat": 52.3, "lon": 14.6},
     "22:04:05Z  S2  border_crossing  person crossed  [de-radar-1, pl-cam-2]"),
    ({"time": "2026-11-21T22:04:05Z", "sector": "S4", "type": "hotlist_vehicle", "summary": "",
      "sources": [], "lat": 52.30001, "lon": 14.6},
     "22:04:05Z  S4  hotlist_vehicle  hotlist_vehicle at 52.30001, 14.60000  [-]"),
    ({"time": "2026-11-21T22:04:05Z", "sector": "S1", "type": "loitering", "summary": "person lingering",
      "sources": ["DE-C1"], "lat": 52.3, "lon": 14.6, "seq": 2},
     "22:04:05Z  S1  loitering        person lingering (update 2)  [DE-C1]"),
])
def test_feed_line(doc, expected):
    assert format_incident(doc) == expected


@pytest.mark.integration
@pytest.mark.slow
def test_demo_shows_incidents_within_a_minute_and_stops_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BORDERFUSE_")}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "borderfuse.ingest.cli", "demo", "--port", "0", "--metrics-port", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout: list[str] = []
    stderr: list[str] = []
    readers = [threading.Thread(target=lambda s=s, out=out: out.extend(s), daemon=True)
               for s, out in ((proc.stdout, stdout), (proc.stderr, stderr))]
    for reader in readers:
        reader.start()
    started = time.monotonic()
    try:
        while not stdout and proc.poll() is None and time.monotonic() - started < 120:
            time.sleep(0.5)
        first_s = time.monotonic() - started
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0, "".join(stderr)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for reader in readers:
        reader.join(10)
    proc.stdout.close()
    proc.stderr.close()
    err = "".join(stderr)
    assert stdout, f"no incident in {first_s:.0f} s\n{err[-3000:]}"
    assert first_s < 75, f"first incident after {first_s:.0f} s (broker start included)"
    assert all(LINE.match(line.rstrip("\n")) for line in stdout), stdout[:5]
    assert re.search(r"metrics at http://127\.0\.0\.1:\d+/metrics", err)
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", err)]
    assert pids and not any(pid_alive(p) for p in pids), "the demo's broker JVM outlived it"
    assert not list(tmp_path.glob("borderfuse-demo-*")), "the demo's broker data dir was left behind"
