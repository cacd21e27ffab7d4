"""One role per folder, checked on the imports themselves (static, every `import` in every function,
and at run time): the service and the pipeline never import development tooling, the pure layers
never import Kafka, and nothing imports the old top-level names (`sensors`, `geo`, `fusion`, `ingest`)."""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]

DEV_TOOLING = ("borderfuse.devbroker", "borderfuse.capture", "borderfuse.simulator", "borderfuse.demo")
TEST_HELPERS = ("sensor_records", "conftest", "prometheus_harness", "tests")
OLD_TOP_LEVEL = ("sensors", "geo", "fusion", "ingest", "devbroker", "capture", "simulator", "demo")
# The command line may reach every tool; it is the only part of ingest/ that may.
CLI = ("borderfuse.ingest.cli", "borderfuse.ingest.commands")

# layer -> the borderfuse packages it may import (besides itself)
ALLOWED = {
    "borderfuse.privacy": (),
    "borderfuse.geo": (),
    "borderfuse.sensors": ("borderfuse.geo", "borderfuse.privacy"),   # the ICD's plate normalisation
    "borderfuse.fusion": ("borderfuse.geo", "borderfuse.sensors", "borderfuse.privacy"),
    "borderfuse.ingest": ("borderfuse.geo", "borderfuse.sensors", "borderfuse.fusion", "borderfuse.privacy"),
}
NO_KAFKA = ("borderfuse.privacy", "borderfuse.geo", "borderfuse.sensors", "borderfuse.fusion", "borderfuse.ingest.pipeline")


def _within(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def module_files() -> dict[str, Path]:
    """Every module of the wheel, by its import name (from pyproject's package-dir mapping)."""
    modules = {}
    for package, folder in PACKAGE_DIRS.items():
        root = REPO / folder
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
                continue
            name = ".".join([package, *parts])
            # a subfolder mapped on its own (none today) is listed by its own entry
            if not any(_within(name, [p]) and p != package and len(p) > len(package) for p in PACKAGE_DIRS):
                modules[name] = path
    return modules


def imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """Absolute names of everything `source` imports, wherever in the file (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return found


def violations(module: str, imported: set[str]) -> list[str]:
    problems = []
    for name in sorted(imported):
        top = name.split(".")[0]
        if top in OLD_TOP_LEVEL:
            problems.append(f"{module} imports {name!r}: use borderfuse.{name}")
        if top in TEST_HELPERS:
            problems.append(f"{module} imports the test helper {name!r}")
    product = _within(module, ALLOWED) and not _within(module, CLI)
    if not product:
        return problems
    layer = next(p for p in ALLOWED if _within(module, [p]))
    for name in sorted(imported):
        if _within(name, DEV_TOOLING):
            problems.append(f"{module} imports development tooling {name}")
        elif name.startswith("borderfuse.") and not _within(name, (layer, *ALLOWED[layer])):
            problems.append(f"{module} ({layer}) imports {name}, a layer above it")
        if name.split(".")[0] == "kafka" and _within(module, NO_KAFKA):
            problems.append(f"{module} is pure (no Kafka) but imports {name}")
    return problems


def test_every_package_folder_is_mapped_and_holds_modules():
    modules = module_files()
    for package, folder in PACKAGE_DIRS.items():
        assert (REPO / folder / "__init__.py").is_file(), f"{folder}/ of {package} has no __init__.py"
    assert {"borderfuse.ingest.service", "borderfuse.ingest.pipeline", "borderfuse.fusion.tracker",
            "borderfuse.devbroker.broker", "borderfuse.simulator.engine"} <= set(modules)


@pytest.mark.parametrize("module", sorted(module_files()))
def test_module_imports_respect_the_layers(module):
    path = module_files()[module]
    imported = imports_of(path.read_text(), module, path.name == "__init__.py")
    assert violations(module, imported) == []


@pytest.mark.parametrize("module, source, expected", [
    ("borderfuse.ingest.service", "from borderfuse.devbroker.broker import reachable", "development tooling"),
    ("borderfuse.ingest.service", "def f():\n    import borderfuse.simulator.run\n", "development tooling"),
    ("borderfuse.ingest.pipeline", "from kafka import KafkaProducer", "pure (no Kafka)"),
    ("borderfuse.fusion.engine", "from borderfuse.ingest.settings import Settings", "a layer above"),
    ("borderfuse.geo.frames", "from ..sensors import base", "a layer above"),
    ("borderfuse.sensors.decode", "from sensor_records import valid_records", "test helper"),
    ("borderfuse.simulator.engine", "from ingest.topics import INPUT_TOPICS", "use borderfuse.ingest.topics"),
    ("borderfuse.ingest.commands.demo", "from borderfuse.devbroker.broker import KafkaBroker", None),
    ("borderfuse.demo.command", "from borderfuse.simulator import run_live", None),
])
def test_the_checker_catches_each_kind_of_leak(module, source, expected):
    """The rules above can fail: each kind of leak, planted in a module, is reported."""
    found = violations(module, imports_of(source, module, False))
    if expected is None:
        assert found == []
    else:
        assert any(expected in problem for problem in found), found


@pytest.mark.parametrize("entry", ["borderfuse.ingest.service", "borderfuse.ingest.pipeline",
                                   "borderfuse.ingest.commands.run"])
def test_importing_the_service_loads_no_development_tooling(entry):
    """At run time too: nothing the service or replay imports (transitively) loads dev tooling."""
    code = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('borderfuse.'))))")
    result = subprocess.run([sys.executable, "-c", code, entry], capture_output=True, text=True, check=True,
                            cwd="/")
    loaded = result.stdout.split()
    assert entry in loaded
    assert [m for m in loaded if _within(m, DEV_TOOLING)] == []
