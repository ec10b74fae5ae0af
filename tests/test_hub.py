"""The Hub path end to end against a local Hub-compatible server (tests/hub_server.py), through the real
huggingface_hub / transformers client code: push a trained model + card with mclmcf.training.cli --push-to-hub,
load it by repo id and revision with mclmcf.serving.weights, the download cache, the offline fallbacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi

from hub_server import point_hub_client_at
from mclmcf.serving import weights as weights_mod
from mclmcf.serving.weights import load_weights
from mclmcf.training.synthetic import TINY_MODEL
from preprocessing.extract import run_extract

ROOT = Path(__file__).resolve().parents[1]
REPO = "tester/mclmcf-mmsa"


@pytest.fixture(scope="module")
def pushed(hub, mmsa_raw, tmp_path_factory):
    """MMSA raw clips -> extract -> python -m mclmcf.train --push-to-hub, the CLI run as a user runs it with
    HF_ENDPOINT pointing at the test hub. Returns the run directory."""
    root = tmp_path_factory.mktemp("pushed")
    raw, labels = mmsa_raw
    run_extract(raw, labels, root / "data", label_range=1.0)
    config = dict(data=str(root / "data" / "safe"), out=str(root / "run"), dataset="sims", epochs=1, batch_size=4,
                  progress=False, push_to_hub=REPO, model=TINY_MODEL)   # the feature spec comes with the data
    (root / "run.json").write_text(json.dumps(config))
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token, "HF_HUB_DISABLE_XET": "1",
           "HF_HOME": str(root / "hf_home")}
    proc = subprocess.run([sys.executable, "-m", "mclmcf.train", "--config", str(root / "run.json")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"pushed to {hub.url}/{REPO}" in proc.stdout
    return root / "run"


@pytest.fixture
def client(hub, tmp_path, monkeypatch):
    """This process's huggingface_hub pointed at the test hub, with an empty cache."""
    point_hub_client_at(hub.url, monkeypatch, tmp_path / "hub_cache")
    monkeypatch.setenv("HF_TOKEN", hub.token)
    return HfApi(endpoint=hub.url)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_push_then_load_by_revision(hub, pushed, client):
    files = hub.repos[REPO].commits[hub.repos[REPO].refs["main"]]
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json"} <= set(files)
    assert "model.safetensors" in hub.repos[REPO].lfs and hub.requests("PUT", r"^/lfs/") == 1
    assert "sims preset" in files["README.md"].decode() and "## Test metrics" in files["README.md"].decode()

    local = load_weights(str(pushed / "model"))
    client.create_tag(REPO, tag="v1")
    v1 = load_weights(f"{REPO}@v1")
    assert v1.source == f"{REPO}@v1" and not v1.notices
    assert same_weights(v1.model, local.model)
    assert v1.tokenizer("a fine film")["input_ids"] == local.tokenizer("a fine film")["input_ids"]

    # a second commit on main: @v1 still gives the first weights, the bare repo id the new ones
    changed = {k: v + 1 if v.is_floating_point() else v for k, v in local.model.state_dict().items()}
    local.model.load_state_dict(changed)
    local.model.save_pretrained(pushed / "model2")
    commit = client.upload_folder(repo_id=REPO, folder_path=str(pushed / "model2"))
    assert same_weights(load_weights(REPO).model, local.model)
    assert same_weights(load_weights(f"{REPO}@{commit.oid}").model, local.model)
    assert not same_weights(load_weights(f"{REPO}@v1").model, local.model)


def test_cache_and_offline_fallbacks(hub, pushed, client, checkpoint, monkeypatch):
    def weight_downloads() -> int:
        return hub.requests("GET", rf"^/{REPO}/resolve/.*/model.safetensors$")

    before = weight_downloads()
    first = load_weights(f"{REPO}@v1")
    assert weight_downloads() == before + 1
    load_weights(f"{REPO}@v1")
    assert weight_downloads() == before + 1            # served from the cache (only a HEAD to check it)

    with socket.socket() as s:                          # an endpoint nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    point_hub_client_at(closed, monkeypatch)
    monkeypatch.setattr(weights_mod, "DEFAULT_DIR", checkpoint)
    cached = load_weights(f"{REPO}@v1")
    assert same_weights(cached.model, first.model) and "cached copy" in cached.notices[0]
    fallback = load_weights(f"{REPO}@v2")              # never downloaded: the bundled weights answer
    assert fallback.source.rstrip("/").endswith("tiny") and "Could not download" in fallback.notices[0]


def test_unknown_repo_or_revision_falls_back_with_a_notice(hub, pushed, client, checkpoint, monkeypatch):
    monkeypatch.setattr(weights_mod, "DEFAULT_DIR", checkpoint)
    missing = load_weights("tester/no-such-model")
    assert "RepositoryNotFoundError" in missing.notices[0]
    assert "RevisionNotFoundError" in load_weights(f"{REPO}@no-such-tag").notices[0]
