"""The demo data builder: split is fixed and seeded; speech goes through the app's acoustic extractor."""

from __future__ import annotations

import io
import shutil
import tarfile

import numpy as np
import pytest

from preprocessing.movie_reviews import assign_splits, read_snippets, spoken_features
from preprocessing.spec import FeatureSpec


def test_split_is_seeded_and_proportional():
    a, b = assign_splits(1000), assign_splits(1000)
    assert (a == b).all()
    assert [(a == s).sum() for s in ("train", "valid", "test")] == [800, 100, 100]
    assert not (assign_splits(1000, seed=1) == a).all()


def test_reads_the_nested_snippet_file(tmp_path):
    # A miniature sdist with the same nesting as vaderSentiment-3.3.2.tar.gz (synthetic rows).
    rows = "1\t2.5\tA ''great'' film\r\n2\t-3.1\tDull and far too long\r\n"
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        data = rows.encode()
        info = tarfile.TarInfo("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    texts, ratings = read_snippets(sdist)
    assert texts == ['A "great" film', "Dull and far too long"]
    np.testing.assert_allclose(ratings, [2.5, -3.1])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_spoken_features_have_the_extractor_layout():
    short, long = spoken_features("good"), spoken_features("a long and winding sentence about a film")
    assert short.shape[1] == long.shape[1] == FeatureSpec().audio_dim
    assert long.shape[0] > short.shape[0]
    assert np.isfinite(long).all()
