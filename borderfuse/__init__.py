"""borderfuse: real-time event fusion for joint DE-PL border surveillance.

One import namespace; each stage is a subpackage mapped from its top-level folder of the repository
(pyproject's `package-dir`):

- `borderfuse.sensors` (sensors/): decode the ICD feeds into observations;
- `borderfuse.geo` (geo/): frames, projection, sectors, border;
- `borderfuse.fusion` (fusion/): tracking, correlation, incident rules, pure;
- `borderfuse.ingest` (ingest/): the Kafka service, settings, CLI;
- development tooling, never imported by the service: `borderfuse.devbroker` (devbroker/),
  `borderfuse.capture` (capture/), `borderfuse.simulator` (simulator/), `borderfuse.demo` (demo/).
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("borderfuse")
except PackageNotFoundError:  # running from a tree that was never installed
    __version__ = "0+unknown"
