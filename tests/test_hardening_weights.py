"""Issue #27, points 2, 3, 7, 10 and 12 (the app's part): weights named by a visitor, through the real
huggingface_hub client against the local Hub emulation (tests/hub_server.py), and weights the app must refuse.

The attacker repos are small synthetic weights (a tiny random BERT inside, tests/tiny_model.py): the Hub cannot
be reached offline, and the attacks need only the config and the safetensors header to be what they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

from hub_server import HubServer, Repo, point_hub_client_at
from mclmcf.model import MCLMCF
from mclmcf.model import text_encoder as text_encoder_mod
from mclmcf.serving import untrusted
from mclmcf.serving import weights as weights_mod
from mclmcf.serving.registry import PipelineRegistry
from mclmcf.serving.weights import WeightsError, load_weights
from preprocessing import FeatureSpec, FeatureSpecMismatch
from test_hardening import proc_status
from tiny_model import tiny_config

REFUSED = text_encoder_mod.VISITOR_ENCODER_REFUSED


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> dict[str, bytes]:
    """The files of small inference weights (tiny BERT stored in the file, the packaged MiniLM's tokenizer)."""
    spec = FeatureSpec()
    config = tiny_config(audio_dim=spec.audio_dim, visual_dim=spec.visual_dim, feature_spec=spec.to_dict(),
                         notes={"trained_on": "nothing: random weights (tests)"})
    directory = tmp_path_factory.mktemp("tiny-weights")
    torch.manual_seed(0)
    MCLMCF(config).for_inference().save_pretrained(directory)
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


@pytest.fixture
def visitor_hub(hub, tmp_path, monkeypatch):
    """This process's huggingface_hub pointed at the test hub; empty Hugging Face and visitor caches."""
    point_hub_client_at(hub.url, monkeypatch, tmp_path / "hf_cache")
    monkeypatch.setenv("MCLMCF_CACHE", str(tmp_path / "mclmcf_cache"))
    monkeypatch.delenv("MCLMCF_ALLOWED_WEIGHT_DIRS", raising=False)
    return hub


def publish(hub: HubServer, repo_id: str, files: dict[str, bytes]) -> None:
    sha = hashlib.sha1(repo_id.encode() + b"".join(hashlib.sha1(files[p]).digest() for p in sorted(files))).hexdigest()
    hub.repos[repo_id] = Repo(commits={sha: files}, refs={"main": sha},
                              lfs={p for p in files if p.endswith(".safetensors")})


def with_config(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    config = json.loads(files["config.json"])
    config.update(changes)
    return {**files, "config.json": json.dumps(config).encode()}


def downloads(hub: HubServer, repo_id: str) -> list[str]:
    return sorted({p.split("/resolve/", 1)[1].split("/", 1)[1] for m, p in hub.log
                   if m == "GET" and p.startswith(f"/{repo_id}/resolve/")})


def count_builds(monkeypatch) -> list[str]:
    """Every MCLMCF.from_pretrained call (the real build, with real memory) is recorded."""
    calls, real = [], MCLMCF.from_pretrained.__func__

    def spy(cls, directory, *args, **kwargs):
        calls.append(str(directory))
        return real(cls, directory, *args, **kwargs)
    monkeypatch.setattr(MCLMCF, "from_pretrained", classmethod(spy))
    return calls


# ---- 2. sizes, counts and exact names before any download; config against header before any build ---------

def test_only_exact_files_of_a_bounded_size_are_downloaded(visitor_hub, tiny_weights, checkpoint, monkeypatch):
    hub = visitor_hub
    extras = {"tokenizer/nested.json": b"x" * 1000, "tokenizer_big.bin": b"x" * 5000, "pytorch_model.bin": b"x" * 10}
    publish(hub, "attacker/extras", {**tiny_weights, **extras})
    registry = PipelineRegistry(str(checkpoint))
    assert registry.get("attacker/extras").weights.source == "attacker/extras"
    assert downloads(hub, "attacker/extras") == sorted(p for p in tiny_weights if p in untrusted.MAX_FILE_BYTES)
    assert not Path(constants.HF_HUB_CACHE).exists()              # visitors' repos go to their own cache folder
    assert (untrusted.visitor_cache_dir() / "models--attacker--extras").is_dir()

    # a file over its limit: refused from the Hub API's sizes, nothing downloaded
    monkeypatch.setitem(untrusted.MAX_FILE_BYTES, "model.safetensors", len(tiny_weights["model.safetensors"]) - 1)
    publish(hub, "attacker/large", tiny_weights)
    with pytest.raises(WeightsError, match=r"'attacker/large': model\.safetensors is [\d.]+ MB; this server loads at most"):
        registry.get("attacker/large")
    assert downloads(hub, "attacker/large") == []

    # pickles are never fetched: a repo without model.safetensors is refused before any download
    publish(hub, "attacker/pickle", {"config.json": tiny_weights["config.json"], "pytorch_model.bin": b"\x80\x04"})
    with pytest.raises(WeightsError, match=r"has no config\.json \+ model\.safetensors at its root"):
        registry.get("attacker/pickle")
    assert downloads(hub, "attacker/pickle") == []


def test_oversized_config_is_refused_before_any_model_is_built(visitor_hub, tiny_weights, checkpoint, monkeypatch):
    """fusion_dim=16000 allocated +1.17 GB before the weights were even read (issue #27, point 2)."""
    builds = count_builds(monkeypatch)
    registry = PipelineRegistry(str(checkpoint))
    publish(visitor_hub, "attacker/wide", with_config(tiny_weights, fusion_dim=16000))
    publish(visitor_hub, "attacker/wide-in-bounds", with_config(tiny_weights, fusion_dim=4000))
    publish(visitor_hub, "attacker/wide-encoder", with_config(
        tiny_weights, text_encoder_config={**json.loads(tiny_weights["config.json"])["text_encoder_config"],
                                           "intermediate_size": 1_000_000}))
    before = proc_status()
    with pytest.raises(WeightsError, match=r"sets fusion_dim = 16000; this server builds models with fusion_dim up to 4096"):
        registry.get("attacker/wide")
    with pytest.raises(WeightsError, match=r"model\.safetensors does not fit config\.json: \d+ tensor\(s\) differ, e\.g\. "
                                           r"fuse_deep\.bias: \(32,\) in the file, \(4000,\) in the config"):
        registry.get("attacker/wide-in-bounds")
    with pytest.raises(WeightsError, match=r"text_encoder_config\.intermediate_size = 1000000"):
        registry.get("attacker/wide-encoder")
    grown = proc_status()["rss_mib"] - before["rss_mib"]
    assert builds == [] and grown < 100, (builds, grown)   # nothing built: checked on the meta device


# ---- 3. a visitor's config names no local folder, fetches no other model ---------------------------------

def test_visitor_weights_name_only_packaged_or_stored_encoders(visitor_hub, tiny_weights, checkpoint, tmp_path,
                                                               monkeypatch):
    pretrained = []
    monkeypatch.setattr(text_encoder_mod, "_pretrained", lambda name: pretrained.append(name))
    registry = PipelineRegistry(str(checkpoint))
    (tmp_path / "owner" / "model").mkdir(parents=True)       # a folder whose name is also a valid Hub id
    monkeypatch.chdir(tmp_path)
    by_reference = dict(freeze_text_encoder=True, text_encoder_sha256="0" * 64)
    probes = {"existing-dir": dict(text_encoder=str(tmp_path), **by_reference),
              "missing-dir": dict(text_encoder="/no/such/dir", **by_reference),
              "ssh": dict(text_encoder="/root/.ssh"), "dots": dict(text_encoder="../checkpoints"),
              "home": dict(text_encoder="~/models"),
              "hub-by-reference": dict(text_encoder="owner/model", **by_reference),
              "not-a-name": dict(text_encoder=["x"])}
    answers = set()
    for name, changes in probes.items():
        publish(visitor_hub, f"attacker/{name}", with_config(tiny_weights, **changes))
        with pytest.raises(ValueError) as err:
            registry.get(f"attacker/{name}")
        answers.add(str(err.value))
    assert answers == {REFUSED} and pretrained == []

    # a Hub id whose encoder is stored in the weights: accepted, its tokenizer from the repo's own files
    publish(visitor_hub, "attacker/hub-stored", with_config(tiny_weights, text_encoder="owner/model"))
    assert registry.get("attacker/hub-stored").weights.model.config.text_encoder == "owner/model"
    # ... but without tokenizer files, its name is not looked up (here: the folder owner/model)
    no_tokenizer = {k: v for k, v in with_config(tiny_weights, text_encoder="owner/model").items()
                    if k in ("config.json", "model.safetensors")}
    publish(visitor_hub, "attacker/hub-no-tokenizer", no_tokenizer)
    with pytest.raises(ValueError, match="cannot be used on this server"):
        registry.get("attacker/hub-no-tokenizer")


# ---- 7. failed look-ups are remembered; the default is never evicted nor loaded again ----------------------

def test_junk_ids_are_refused_from_memory_and_never_touch_the_default(visitor_hub, tiny_weights, checkpoint,
                                                                      monkeypatch, make_clip):
    monkeypatch.setattr(weights_mod, "DEFAULT_DIR", checkpoint)   # what a junk id used to fall back to
    builds = count_builds(monkeypatch)
    registry = PipelineRegistry(str(checkpoint))
    default = registry.get()
    default.features(make_clip("talk.mp4"))
    assert builds == [str(checkpoint)]
    for junk in ("nobody/missing", "nobody/other", "nobody/missing@v9"):
        with pytest.raises(WeightsError, match=f"Could not download '{junk}' from the Hugging Face Hub"):
            registry.get(junk)
    asked = len(visitor_hub.log)
    with pytest.raises(WeightsError, match="Could not download 'nobody/missing' from the Hugging Face Hub"):
        registry.get("nobody/missing")
    assert len(visitor_hub.log) == asked                           # answered from the refusal cache
    for i in range(3):                                             # more visitor repos than the registry keeps
        publish(visitor_hub, f"visitor/w{i}", tiny_weights)
        registry.get(f"visitor/w{i}")
    assert registry.get() is default
    with pytest.raises(WeightsError, match="is not a weights source"):   # the install's path tells a visitor nothing (#37)
        registry.get(str(checkpoint))
    assert default.features(make_clip("talk.mp4"))[1]              # its feature cache too
    assert builds.count(str(checkpoint)) == 1                      # the default weights were loaded once


def test_a_visitor_download_does_not_hold_up_requests_for_the_default(checkpoint, monkeypatch):
    """A default request sent while a visitor's repo downloaded used to wait for it (the registry's lock)."""
    from mclmcf.serving import registry as registry_mod
    registry = PipelineRegistry(str(checkpoint))
    default = registry.get()
    downloading, release = threading.Event(), threading.Event()

    def slow_download(*args, **kwargs):
        downloading.set()
        release.wait()
        raise WeightsError("the download failed")
    monkeypatch.setattr(registry_mod, "locate_weights", slow_download)
    visitor = threading.Thread(target=lambda: pytest.raises(WeightsError, registry.get, "visitor/slow"))
    visitor.start()
    downloading.wait()
    answered = []
    request = threading.Thread(target=lambda: answered.append(registry.get()))
    request.start()
    request.join(timeout=60)                                       # a deadlock guard, not a timing
    still_waiting = request.is_alive()
    release.set()
    visitor.join()
    request.join()
    assert not still_waiting and answered == [default]


# ---- 2. the visitor cache stays within its bound ------------------------------------------------------------

def test_visitor_cache_keeps_the_most_recent_repos_within_its_bound(visitor_hub, tiny_weights, checkpoint, monkeypatch):
    one_repo = sum(len(v) for k, v in tiny_weights.items() if k in untrusted.MAX_FILE_BYTES)
    monkeypatch.setattr(untrusted, "VISITOR_CACHE_BYTES", int(2.5 * one_repo))
    registry = PipelineRegistry(str(checkpoint), max_loaded=0)
    for i in range(4):
        publish(visitor_hub, f"visitor/r{i}", with_config(tiny_weights, notes={"trained_on": f"repo {i}"}))
        registry.get(f"visitor/r{i}")
    kept = sorted(p.name for p in untrusted.visitor_cache_dir().glob("models--*"))
    assert kept == ["models--visitor--r2", "models--visitor--r3"]


# ---- 10. no server path or library version in what a visitor reads ------------------------------------------

def test_messages_name_no_server_path_or_library_version(checkpoint, tmp_path, monkeypatch):
    monkeypatch.delenv(weights_mod.ENV_VAR, raising=False)
    monkeypatch.setattr(weights_mod, "DEFAULT_DIR", tmp_path / "srv" / "checkpoints")
    with pytest.raises(WeightsError) as err:
        load_weights(None)
    assert "checkpoints/" in str(err.value) and str(tmp_path) not in str(err.value)
    assert load_weights(str(checkpoint)).source == "tiny/"

    spec = FeatureSpec()
    installed = spec.libraries["librosa"]
    major, minor = installed.split(".")[:2]
    other = shutil.copytree(checkpoint, tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    config["feature_spec"]["libraries"]["librosa"] = f"{major}.{int(minor) + 1}.0"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(FeatureSpecMismatch, match=r"librosa: weights 'other/' used [\d.]+, another minor release") as err:
        load_weights(str(other))
    assert installed not in str(err.value) and str(tmp_path) not in str(err.value)


# ---- 12. unreadable weights: the "no usable weights" banner, not a crash -----------------------------------

@pytest.mark.parametrize("damage", ["truncated", "header"])
def test_truncated_or_damaged_weights_get_the_banner(checkpoint, tmp_path, damage):
    import app
    broken = shutil.copytree(checkpoint, tmp_path / "broken")
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\xff" * 64)
    with pytest.raises(WeightsError, match=r"'broken/': model\.safetensors is truncated or damaged"):
        load_weights(str(broken))
    banner, weights = app.load_default(PipelineRegistry(str(broken)))
    assert weights is None and "truncated or damaged" in banner and str(tmp_path) not in banner
    assert os.path.getsize(broken / "model.safetensors") < len(data)
