"""Packaging: the wheel `pip install .` builds holds the two packages and the data they read (the expression
model), nothing from tests/, benchmarks/ or checkpoints/, and no app.py (the demo runs from a checkout or a
Space); installed into a fresh virtual environment its console scripts work from outside the repository.

The fresh environment gets the wheel alone (`pip install --no-deps --no-index`); its dependencies come from
this test's own environment through a .pth line, so nothing is downloaded."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"mclmcf-train", "mclmcf-predict", "mclmcf-experiments", "mclmcf-extract", "mclmcf-deploy"}
SKIPPED = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                 ".pytest_cache", "artifacts", "runs", "data")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the tree, so that no build/ or egg-info of the shared checkout leaks in or out."""
    root = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, root / "src", ignore=SKIPPED)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(root / "dist"), str(root / "src")], check=True, capture_output=True, timeout=300)
    return next((root / "dist").glob("mclmcf-*.whl"))


def test_the_wheel_holds_the_packages_and_their_data_only(wheel):
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        entry_points = whl.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert {n.split("/")[0] for n in names} == {"mclmcf", "preprocessing", "mclmcf-0.1.0.dist-info"}
    assert "preprocessing/assets/fer_mini_xception.safetensors" in names
    assert {"mclmcf/deploy.py", "mclmcf/serving/weights.py", "preprocessing/clip.py"} <= set(names)
    assert {line.split(" = ")[0] for line in entry_points.splitlines() if " = " in line} == SCRIPTS


@pytest.mark.slow
def test_installed_commands_work_outside_the_repository(wheel, checkpoint, tmp_path):
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--no-cache-dir", str(wheel)], check=True, capture_output=True, timeout=300)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")   # appended after the wheel's
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MCLMCF_WEIGHTS")}
    work = tmp_path / "elsewhere"
    work.mkdir()

    where = subprocess.run([python, "-c", "import mclmcf, preprocessing; print(mclmcf.__file__, preprocessing.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert all(path.startswith(site) for path in where.split()), where

    # a real command: score a bundled example clip with small weights; the facial-expression model comes from the wheel
    shutil.copy(ROOT / "examples" / "positive.mp4", work)
    clip, text = json.loads((ROOT / "examples" / "examples.json").read_text())[0]
    with open(work / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("clip", "transcript"), (clip, text)])
    proc = subprocess.run([env_dir / "bin" / "mclmcf-predict", "--clips", ".", "--labels", "labels.csv", "--out",
                           "scores.csv", "--weights", str(checkpoint), "--asr-model", "none"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(work / "scores.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["error"] == "" and row["score"] and float(row["face_fraction"]) > 0.5

    # deploy needs the app's files, which a wheel does not carry: it says so instead of failing half-way
    proc = subprocess.run([env_dir / "bin" / "mclmcf-deploy", "--space", "tester/demo"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "clone of the repository" in proc.stderr and "Traceback" not in proc.stderr
