"""The wheel: one import namespace (`borderfuse/`), nothing else at its top level, and an install
of it coexists with other distributions' `geo`, `fusion`, `sensors` and `ingest` packages."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
GENERIC_NAMES = ("geo", "fusion", "sensors", "ingest")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of what the build needs (the work tree stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for name in ["pyproject.toml", "README.md", *PYPROJECT["tool"]["setuptools"]["package-dir"].values()]:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(src)], check=True, capture_output=True, text=True)
    (built,) = out.glob("borderfuse-*.whl")
    return built


def test_wheel_holds_only_the_borderfuse_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"borderfuse"}
    top_level = [n for n in names if n.endswith("top_level.txt")]
    if top_level:
        assert zipfile.ZipFile(wheel).read(top_level[0]).decode().split() == ["borderfuse"]


@pytest.mark.parametrize("member", [
    "borderfuse/__init__.py",
    "borderfuse/ingest/service.py",
    "borderfuse/ingest/incident.v1.avsc",
    "borderfuse/ingest/incident.v2.avsc",
    "borderfuse/fusion/rules.toml",
    "borderfuse/geo/data/sectors.geojson",
    "borderfuse/sensors/schemas/pl/registry.json",
    "borderfuse/devbroker/kafka/pom.xml",
    "borderfuse/simulator/engine.py",
])
def test_wheel_carries_code_and_data(wheel, member):
    assert member in zipfile.ZipFile(wheel).namelist()


def test_requires_python_refuses_no_newer_interpreter():
    spec = PYPROJECT["project"]["requires-python"]
    assert spec.startswith(">=3.11") and "<" not in spec


@pytest.mark.slow
def test_installed_wheel_coexists_with_other_geo_and_fusion(wheel, tmp_path, sample_capture):
    """A fresh venv with the wheel and other distributions' `geo`/`fusion`/`sensors`/`ingest`
    (stand-ins here; the closing note measured PyPI's real `geo` and `fusion`): each import gives
    its own package, and `borderfuse replay` runs the sample."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies come from the project's venv (a path, not its .pth files: its editable
    # borderfuse finder stays out), so the test needs no download.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for name in GENERIC_NAMES:
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(f"OWNER = 'other-{name}'\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    str(wheel)], check=True, capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BORDERFUSE_"))}
    check = subprocess.run(
        [str(python), "-c", "import geo, fusion, sensors, ingest, borderfuse.fusion.engine, borderfuse.geo;"
                            "print(geo.OWNER, fusion.OWNER, sensors.OWNER, ingest.OWNER, borderfuse.geo.Geography)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert check.stdout.split()[:4] == [f"other-{n}" for n in GENERIC_NAMES]
    out = tmp_path / "incidents.jsonl"
    run = subprocess.run([str(venv / "bin" / "borderfuse"), "replay", str(sample_capture), "--out", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(out.read_text().splitlines()) >= 10
