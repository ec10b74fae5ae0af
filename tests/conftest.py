"""Shared fixtures, made once per test session: real media (preprocessing/synthetic.py) and small
untrained inference weights shaped like the demo weights (mclmcf.weights.save_random_weights)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory):
    """``make_clip(name, **kwargs) -> Path``: a synthetic face clip (``make_face_clip`` kwargs), made
    once per session and name. Small and short by default to keep tests fast."""
    from preprocessing.synthetic import make_face_clip
    root = tmp_path_factory.mktemp("clips")
    made = {}

    def make(name: str, **kwargs):
        if name not in made:
            kwargs = {"duration_s": 2.0, "fps": 10, "size": (320, 180), **kwargs}
            made[name] = make_face_clip(root / name, **kwargs)
        return made[name]

    return make


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """Directory of untrained inference weights, TCF 64 x 64."""
    from mclmcf.weights import save_random_weights
    return save_random_weights(tmp_path_factory.mktemp("weights") / "tiny", tcf_dim=64)


@pytest.fixture(scope="session")
def loaded(checkpoint):
    """``checkpoint`` loaded as the app loads weights."""
    from mclmcf.weights import load_weights
    return load_weights(str(checkpoint))
