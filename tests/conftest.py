"""Shared fixtures: real media (preprocessing/synthetic.py) and small untrained inference weights shaped like the
demo weights (random_weights.save_random_weights), made once per test session; a local Hub server per module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory):
    """``make_clip(name, **kwargs) -> Path``: a synthetic face clip (``make_face_clip`` kwargs), made
    once per session, name and kwargs (the same name with other kwargs is another file of that name, in a
    folder of its own). Small and short by default to keep tests fast."""
    from preprocessing.synthetic import make_face_clip
    root = tmp_path_factory.mktemp("clips")
    made = {}

    def make(name: str, **kwargs):
        kwargs = {"duration_s": 2.0, "fps": 10, "size": (320, 180), **kwargs}
        key = (name, repr(sorted(kwargs.items())))
        if key not in made:
            folder = root / str(len(made))
            folder.mkdir()
            made[key] = make_face_clip(folder / name, **kwargs)
        return made[key]

    return make


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """Directory of untrained inference weights, TCF 64 x 64."""
    from random_weights import save_random_weights
    return save_random_weights(tmp_path_factory.mktemp("weights") / "tiny", tcf_dim=64)


@pytest.fixture(scope="session")
def loaded(checkpoint):
    """``checkpoint`` loaded as the app loads weights."""
    from mclmcf.serving.weights import load_weights
    return load_weights(str(checkpoint))


MMSA_HEADER = "video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode"
MMSA_ROWS = [  # CH-SIMS style: per-modality labels in [-1, 1]; video_id / clip_id as MMSA writes them
    ("video_0001", "0001", "I loved every minute of it", 0.8, 1.0, 0.6, 0.4, "Positive", "train", "talk.mp4"),
    ("video_0001", "0002", "That was a waste of time", -0.6, -0.8, -0.2, -0.4, "Negative", "train", "mmsa_still.mp4"),
    ("video_0002", "0001", "It was okay I guess", 0.0, 0.2, -0.2, 0.0, "Neutral", "train", "mmsa_tone.mp4"),
    ("video_0002", "0002", "Not my kind of film", -0.4, -0.6, 0.0, -0.2, "Negative", "valid", "mmsa_open.mp4"),
    ("video_0003", "0001", "Brilliant acting throughout", 1.0, 1.0, 0.8, 0.6, "Positive", "test", "talk.mp4"),
    ("video_0003", "0002", "Nobody filmed this one", 0.2, 0.2, 0.2, 0.2, "Positive", "test", None),
]


@pytest.fixture(scope="session")
def mmsa_raw(make_clip, tmp_path_factory):
    """A tiny dataset in exactly MMSA's raw layout: ``Raw/<video_id>/<clip_id>.mp4`` + ``label.csv``. The
    last row's clip file is missing (a row that cannot be used). Returns (Raw folder, label.csv)."""
    import shutil
    root = tmp_path_factory.mktemp("mmsa")
    kinds = {"talk.mp4": dict(mouth="talk", audio="speech"), "mmsa_still.mp4": dict(motion="still", audio="tone"),
             "mmsa_tone.mp4": dict(audio="tone", pitch_hz=220.0), "mmsa_open.mp4": dict(motion="sway", mouth="open", audio="tone")}
    lines = [MMSA_HEADER]
    for video_id, clip_id, text, label, lt, la, lv, annotation, mode, kind in MMSA_ROWS:
        if kind:
            (root / "Raw" / video_id).mkdir(parents=True, exist_ok=True)
            shutil.copy(make_clip(kind, **kinds[kind]), root / "Raw" / video_id / f"{clip_id}.mp4")
        lines.append(f"{video_id},{clip_id},{text},{label},{lt},{la},{lv},{annotation},{mode}")
    (root / "label.csv").write_text("\n".join(lines) + "\n")
    return root / "Raw", root / "label.csv"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """A small SYNTHETIC planted-signal dataset in the safe format (80 samples), for training tests."""
    from preprocessing.dataformat import save_safe
    from mclmcf.training.synthetic import SyntheticSpec, generate
    path = tmp_path_factory.mktemp("data") / "synthetic"
    data, info = generate(SyntheticSpec(n=80, seed=1, max_audio_len=12, max_vision_len=8))
    save_safe(data, path, info=info)
    return str(path)


@pytest.fixture(scope="module")
def hub():
    """A local Hugging Face Hub-compatible server (tests/hub_server.py), one per test module: its repos start empty."""
    from hub_server import HubServer
    with HubServer() as server:
        yield server
