"""The demo data builder: splits are fixed and seeded; speech goes through the app's acoustic extractor."""

from __future__ import annotations

import io
import shutil
import tarfile

import numpy as np
import pytest

from preprocessing.rated_snippets import assign_splits, read_domain, sample_id, spoken_features
from preprocessing.spec import FeatureSpec


def test_split_is_seeded_and_proportional():
    a, b = assign_splits(1000), assign_splits(1000)
    assert (a == b).all()
    assert [(a == s).sum() for s in ("train", "valid", "test")] == [800, 100, 100]
    assert not (assign_splits(1000, seed=1) == a).all()


def _miniature_sdist(tmp_path, files: dict[str, str]):
    """A miniature sdist with the same nesting as vaderSentiment-3.3.2.tar.gz (synthetic rows)."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"hutto_ICWSM_2014/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    return sdist


def test_reads_ratings_and_rater_spread(tmp_path):
    sdist = _miniature_sdist(tmp_path, {
        "tweets_GroundTruth.txt": "1\t2.5\tA ''great'' day\r\n2\t-3.1\tDull and far too long\r\n3\t0.1\t \r\n",
        # the files start with a byte-order mark, as the Amazon file of the real archive does
        "tweets_anonDataRatings.txt": "\ufeff1\t2.5\t0.5\t[2, 3]\r\n2\t-3.1\t0.9\t[-2, -4, -3, -3]\r\n",
    })
    s = read_domain(sdist, "tweets")
    assert s.texts == ['A "great" day', "Dull and far too long"]      # the empty third row is skipped
    assert s.ids == ["1", "2"]
    np.testing.assert_allclose(s.ratings, [2.5, -3.1])
    np.testing.assert_allclose(s.rater_sd, [0.5, 0.9])
    assert s.n_raters.tolist() == [2, 4]


def test_movie_ids_keep_the_movie_only_sets_names():
    assert sample_id("movie", 0, "1") == "snippet_1"
    assert sample_id("nyt", 4, "1_5") == "nyt_1_5"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_spoken_features_have_the_extractor_layout():
    short, long = spoken_features("good"), spoken_features("a long and winding sentence about a film")
    assert short.shape[1] == long.shape[1] == FeatureSpec().audio_dim
    assert long.shape[0] > short.shape[0]
    assert np.isfinite(long).all()


def refuse_to_voice(text: str):
    raise AssertionError("voiced again")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_voiced_features_are_reused_for_the_same_texts(tmp_path, monkeypatch):
    """Per-text cache: a second build voices nothing it has, and only the new text of a changed list."""
    from preprocessing import rated_snippets
    cache = tmp_path / "speech_cache"
    first = rated_snippets.voice_all(["good", "rather bad"], cache, workers=1)
    monkeypatch.setattr(rated_snippets, "spoken_features", refuse_to_voice)
    again = rated_snippets.voice_all(["good", "rather bad"], cache, workers=1)
    assert all((a == b).all() for a, b in zip(first, again))
    with pytest.raises(AssertionError, match="voiced again"):
        rated_snippets.voice_all(["good", "quite bad"], cache, workers=1)
    assert len(list(cache.rglob("*.npy"))) == 2


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_a_snippet_starting_with_a_dash_is_spoken_not_read_as_an_option():
    assert spoken_features("- the unit is easy to use").shape[0] > 50
