"""The wheel ships the configs: built offline, it holds exactly the YAML files of src/lipgan/configs/,
byte for byte, and lipgan imported from the unpacked wheel, outside the checkout, finds them by name.

The wheel is built from a copy of pyproject.toml, README.md and src/ rather than in the checkout: a build
there leaves build/ and an egg-info behind, and a stale build/lib would add files the checkout no longer
has. Both tests take about 5 s together (the build about 2 s, the second one imports torch in a fresh
interpreter).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOURCE_CONFIGS = ROOT / "src" / "lipgan" / "configs"
IN_WHEEL = "lipgan/configs/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    command += ["--no-cache-dir", "--quiet", "--wheel-dir", str(tmp / "dist"), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (path,) = (tmp / "dist").glob("lipgan-*.whl")
    return path


def test_wheel_holds_exactly_the_configs(wheel):
    on_disk = {p.relative_to(SOURCE_CONFIGS).as_posix(): p for p in SOURCE_CONFIGS.rglob("*.yaml")}
    with zipfile.ZipFile(wheel) as archive:
        packed = {n.removeprefix(IN_WHEEL): n for n in archive.namelist() if n.startswith(IN_WHEEL)}
        assert len(on_disk) >= 100 and "gran/cifar10_grand.yaml" in on_disk
        assert sorted(packed) == sorted(on_disk)
        for relative, path in on_disk.items():
            assert archive.read(packed[relative]) == path.read_bytes(), relative


def test_unpacked_wheel_finds_configs_by_name_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    script = f"""
import lipgan
from lipgan.cli import main
from lipgan.training.config import find_config
print("lipgan at", lipgan.__file__)
print("grid at", find_config("sweeps/embedded/lipreg_table2"))
assert main(["configs", "cifar10_grand"]) == 0
assert main(["train", "--dry-run", "gran/cifar10_grand", "data.root={tmp_path / "no_data"}"]) == 0
sweeps_dir = "{tmp_path / "sweeps"}"
assert main(["sweep", "sweeps/embedded/lipreg_table2", "--dry-run", "--sweeps-dir", sweeps_dir]) == 0
"""
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"lipgan at {site / 'lipgan' / '__init__.py'}" in out
    assert f"grid at {site / 'lipgan' / 'configs' / 'sweeps' / 'embedded' / 'lipreg_table2.yaml'}" in out
    assert "gran/cifar10_grand  train  GraN" in out
    assert "name: gran_cifar10_grand" in out and "arch: sngan-resnet" in out
    assert "lipreg_table2_digits" in out
    assert "# cifar10 files not found: architecture options not checked" in result.stderr
