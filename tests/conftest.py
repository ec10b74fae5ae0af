"""Shared fixtures: real media generated once per test session (see preprocessing/synthetic.py)."""

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
