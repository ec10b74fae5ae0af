"""python -m mclmcf.deploy end to end against the local Hub server (tests/hub_server.py), run as a user runs it
(a subprocess with HF_ENDPOINT pointing at the server): the weights repo, the Space's files, front matter,
variable and hardware; a fresh process that runs the Space's files with the Space's variable scores the bundled
example clips exactly as checkpoints/ does; a missing or refused token gets a message. And the repository
stays small: no file over 10 MB goes into git."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub_server import HubServer

ROOT = Path(__file__).resolve().parents[1]
SPACE = "tester/mclmcf-demo"
WEIGHTS_REPO = f"{SPACE}-weights"
MAX_GIT_FILE_MB = 10   # the Hub refuses larger files pushed without LFS; weights live on the Hub instead


def run_deploy(hub: HubServer, home: Path, *args: str, token: str | None = None, cwd: Path = ROOT):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(home))   # HF_HOME: no stored login
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "mclmcf.deploy", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def deployed(hub, tmp_path_factory):
    proc = run_deploy(hub, tmp_path_factory.mktemp("hf_home"), "--space", SPACE, token=hub.token)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def front_matter(readme: bytes) -> dict:
    return yaml.safe_load(readme.decode().split("---\n")[1])


def local_space_files() -> set[str]:
    """What the Space should hold, listed independently of mclmcf.deploy.SPACE_FILES."""
    paths = {"app.py", "requirements.txt", "packages.txt", "README.md", ".gitattributes"}
    for folder in ("mclmcf", "preprocessing", "examples"):
        paths |= {str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and (folder != "mclmcf" or p.suffix == ".py")}
    return paths


def test_deploy_creates_the_weights_repo_and_the_space(hub, deployed):
    lines = deployed.stdout.splitlines()
    assert [line[:5] for line in lines if line.startswith("[")] == [f"[{i}/5]" for i in range(1, 6)]
    assert lines[-1] == f"Space: {hub.url}/spaces/{SPACE}"

    weights = hub.files(WEIGHTS_REPO)
    bundled = {p.name for p in (ROOT / "checkpoints").iterdir() if p.is_file()}
    assert set(weights) == bundled
    assert all(weights[name] == (ROOT / "checkpoints" / name).read_bytes() for name in bundled)
    assert "model.safetensors" in hub.repos[WEIGHTS_REPO].lfs

    space = hub.repos[f"spaces/{SPACE}"]
    assert space.settings["type"] == "space" and space.settings["sdk"] == "gradio"
    assert space.hardware == "cpu-basic"
    pinned = f"{WEIGHTS_REPO}@{hub.repos[WEIGHTS_REPO].refs['main']}"
    assert space.variables["MCLMCF_WEIGHTS"]["value"] == pinned

    files = hub.files(f"spaces/{SPACE}")
    assert set(files) == local_space_files()
    assert not any(p.startswith(("tests/", "benchmarks/", "checkpoints/", "docs/")) for p in files)
    assert files["app.py"] == (ROOT / "app.py").read_bytes()
    assert {"examples/positive.mp4", "preprocessing/assets/fer_mini_xception.safetensors"} <= space.lfs
    meta, ours = front_matter(files["README.md"]), front_matter((ROOT / "README.md").read_bytes())
    assert meta["models"] == [WEIGHTS_REPO]
    assert {k: meta[k] for k in ours} == ours            # sdk, sdk_version, app_file, python_version, ...
    assert pinned.split("@")[1] in files["README.md"].decode()


def test_redeploy_updates_in_place(hub, deployed, tmp_path):
    """A second deploy of the same tree: no new weights commit, the same pin, and a file the app no longer
    has (left by an earlier deploy) is deleted from the Space."""
    from huggingface_hub import CommitOperationAdd, HfApi
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_commit(SPACE, repo_type="space", commit_message="stale",
                      operations=[CommitOperationAdd("mclmcf/old_module.py", b"x = 1\n")])
    weights_commit = hub.repos[WEIGHTS_REPO].refs["main"]
    proc = run_deploy(hub, tmp_path / "hf_home", "--space", SPACE, "--hardware", "zero-a10g", token=hub.token)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert hub.repos[WEIGHTS_REPO].refs["main"] == weights_commit
    space = hub.repos[f"spaces/{SPACE}"]
    assert space.variables["MCLMCF_WEIGHTS"]["value"] == f"{WEIGHTS_REPO}@{weights_commit}"
    assert space.hardware == "zero-a10g"
    assert set(hub.files(f"spaces/{SPACE}")) == local_space_files()


def test_weights_already_on_the_hub_and_a_private_space(hub, deployed, tmp_path):
    """--weights OWNER/REPO@REV uploads nothing and pins the revision's commit; --private makes the Space
    private and says that it needs a token to read private weights."""
    commit = hub.repos[WEIGHTS_REPO].refs["main"]
    puts = hub.requests("PUT", r"^/lfs/")
    proc = run_deploy(hub, tmp_path / "hf_home", "--space", "tester/private-demo", "--weights", f"{WEIGHTS_REPO}@main",
                      "--private", token=hub.token)
    assert proc.returncode == 0, proc.stderr[-3000:]
    space = hub.repos["spaces/tester/private-demo"]
    assert space.variables["MCLMCF_WEIGHTS"]["value"] == f"{WEIGHTS_REPO}@{commit}"
    assert space.settings["visibility"] == "private" and "Space secret HF_TOKEN" in proc.stdout
    assert "tester/private-demo-weights" not in hub.repos and hub.requests("PUT", r"^/lfs/") == puts


@pytest.mark.slow
def test_the_space_serves_the_uploaded_weights(hub, deployed, tmp_path):
    """The Space's files as the Hub holds them, run in a fresh process with the Space's variable (and no
    checkpoints/ to fall back to), score the bundled examples exactly as the same files do with checkpoints/
    (the same code both times: the checkout may change while the test runs)."""
    space = tmp_path / "space"
    for path, content in hub.files(f"spaces/{SPACE}").items():
        (space / path).parent.mkdir(parents=True, exist_ok=True)
        (space / path).write_bytes(content)
    assert not (space / "checkpoints").exists()
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        csv.writer(f).writerows([("clip", "transcript"), *json.loads((ROOT / "examples" / "examples.json").read_text())])
    variable = hub.repos[f"spaces/{SPACE}"].variables["MCLMCF_WEIGHTS"]["value"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MCLMCF_")) and k != "PYTHONPATH"}

    def scores(out: Path, *weights: str, **extra_env: str) -> list[dict]:
        cmd = [sys.executable, "-m", "mclmcf.predict", "--clips", str(ROOT / "examples"), "--labels", str(labels),
               "--out", str(out), "--asr-model", "none", *weights]
        proc = subprocess.run(cmd, cwd=space, env={**env, **extra_env}, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with open(out, newline="") as f:
            return list(csv.DictReader(f))

    home = tmp_path / "hf_home"
    on_space = scores(tmp_path / "space.csv", MCLMCF_WEIGHTS=variable, HF_ENDPOINT=hub.url, HF_HOME=str(home),
                      HF_HUB_DISABLE_XET="1")
    bundled = scores(tmp_path / "bundled.csv", "--weights", str(ROOT / "checkpoints"), HF_HUB_OFFLINE="1")
    repo, commit = variable.split("@")
    assert hub.requests("GET", rf"^/{repo}/resolve/{commit}/model.safetensors$") == 1   # downloaded, not a fallback
    downloaded = next(home.rglob("model.safetensors"))
    assert downloaded.read_bytes() == (ROOT / "checkpoints" / "model.safetensors").read_bytes()
    assert [r["error"] for r in on_space] == ["", ""]
    assert [r["score"] for r in on_space] == [r["score"] for r in bundled]
    assert float(on_space[0]["score"]) > 0 > float(on_space[1]["score"])


def test_missing_token_gets_a_message(hub, tmp_path):
    proc = run_deploy(hub, tmp_path / "hf_home", "--space", "tester/never")
    assert proc.returncode == 2
    assert "No Hugging Face token" in proc.stderr and "HF_TOKEN" in proc.stderr
    assert "Traceback" not in proc.stderr and "spaces/tester/never" not in hub.repos


def test_refused_token_gets_a_message(hub, tmp_path):
    proc = run_deploy(hub, tmp_path / "hf_home", "--space", "tester/never", token="hf_not_the_right_one")
    assert proc.returncode == 2
    assert "refused the token" in proc.stderr and "Traceback" not in proc.stderr
    assert "spaces/tester/never" not in hub.repos and "tester/never-weights" not in hub.repos


def files_over(root: Path, limit_mb: float) -> list[str]:
    """Files a commit of ``root`` would hold (tracked, and untracked ones git does not ignore) over the limit."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [p for p in listed if p and (root / p).is_file() and (root / p).stat().st_size > limit_mb * 10**6]


def test_no_file_over_10_mb_goes_into_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    assert files_over(ROOT, MAX_GIT_FILE_MB) == [], (
        "keep weights out of git: publish them on the Hub (python -m mclmcf.deploy, mclmcf.train --push-to-hub)")


def test_the_size_check_sees_a_large_file(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("no git")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "small.txt").write_text("ok")
    (tmp_path / "model.safetensors").write_bytes(bytes(10**7 + 1))
    assert files_over(tmp_path, MAX_GIT_FILE_MB) == ["model.safetensors"]
