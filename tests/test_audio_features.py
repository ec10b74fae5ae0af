"""preprocessing.audio computes librosa 0.11's recipe without librosa: the features equal those librosa gives
(the weights were trained on them) on real speech, on the test clips' sound tracks and on edge cases, and
computing them compiles nothing (no librosa, no numba imported)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest

from preprocessing.audio import SILENCE_DB, VOICED, audio_features, periodicity
from preprocessing.media import load_media
from preprocessing.spec import AUDIO_RECIPE, FeatureSpec
from preprocessing.synthetic import speak, voice_tone

ROOT = Path(__file__).resolve().parents[1]
SPEC = FeatureSpec()
TOLERANCE = 1e-5
SENTENCES = [("I really did not like this film, although the actors tried their best.", None),
             ("What a wonderful surprise! I loved every minute of it.", "en-us+f3")]


def librosa_features(wave: np.ndarray, spec: FeatureSpec = SPEC) -> np.ndarray:
    """The features as preprocessing.audio computed them with librosa before it was rewritten."""
    y = np.nan_to_num(np.asarray(wave, np.float32)).clip(-1.0, 1.0)
    if len(y) < spec.n_fft:
        y = np.pad(y, (0, spec.n_fft - len(y)))
    sr, hop, n_fft = spec.sample_rate, spec.hop_length, spec.n_fft
    mag = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    mel = librosa.feature.melspectrogram(S=mag ** 2, sr=sr, n_mels=spec.n_mels)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, amin=1e-10, top_db=None), n_mfcc=13)
    width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
    if width >= 3:
        d1 = librosa.feature.delta(mfcc, width=width, order=1, mode="nearest")
        d2 = librosa.feature.delta(mfcc, width=width, order=2, mode="nearest")
    else:
        d1 = d2 = np.zeros_like(mfcc)
    rms_db = 20 * np.log10(np.maximum(librosa.feature.rms(S=mag, frame_length=n_fft)[0], 1e-5))
    f0 = librosa.yin(y, fmin=spec.fmin_hz, fmax=spec.fmax_hz, sr=sr, frame_length=n_fft, hop_length=hop)
    voicing = periodicity(y, f0, sr, n_fft, hop) * (rms_db > SILENCE_DB)
    log_f0 = np.where(voicing > VOICED, np.log(np.maximum(f0, 1.0)), 0.0)
    khz = 1e-3
    shape = [librosa.feature.spectral_centroid(S=mag, sr=sr)[0] * khz,
             librosa.feature.spectral_bandwidth(S=mag, sr=sr)[0] * khz,
             librosa.feature.spectral_rolloff(S=mag, sr=sr)[0] * khz,
             librosa.feature.spectral_flatness(S=mag, amin=1e-10)[0],
             librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[0]]
    frames = librosa.util.frame(np.pad(y, n_fft // 2), frame_length=n_fft, hop_length=hop)
    clip_frac = (np.abs(frames) >= 0.999).mean(axis=0)
    cols = [*mfcc, *d1, *d2, log_f0, voicing, rms_db, *shape, clip_frac]
    n = min(len(c) for c in cols)
    out = np.stack([c[:n] for c in cols], axis=1).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def assert_same_as_librosa(wave: np.ndarray) -> np.ndarray:
    # the reference is the recipe the features and every checkpoint record
    assert librosa.__version__.split(".")[:2] == AUDIO_RECIPE["librosa"].split(".")[:2], librosa.__version__
    ours, theirs = audio_features(wave, SPEC), librosa_features(wave, SPEC)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32
    worst = np.abs(ours.astype(np.float64) - theirs).max(axis=0)
    assert worst.max() <= TOLERANCE, {SPEC.audio_features[i]: float(worst[i]) for i in np.flatnonzero(worst > TOLERANCE)}
    return ours


@pytest.mark.parametrize("text, voice", SENTENCES)
def test_features_of_real_speech_equal_librosas(text, voice):
    features = assert_same_as_librosa(speak(text, SPEC.sample_rate, voice=voice))
    voiced = features[:, SPEC.audio_features.index("voicing")] > VOICED
    assert 0.2 < voiced.mean() < 0.9            # speech with pauses: both branches of the pitch are compared


@pytest.mark.parametrize("name, kwargs", [("talk.mp4", {}), ("tone.mp4", {"audio": "tone"}),
                                          ("glide120.mp4", {"audio": "tone", "pitch_hz": (120.0, 300.0)}),
                                          ("quiet.mp4", {"audio": "silence"})])
def test_features_of_the_test_clips_equal_librosas(make_clip, name, kwargs):
    assert_same_as_librosa(load_media(make_clip(name, **kwargs), sample_rate=SPEC.sample_rate).waveform)


@pytest.mark.parametrize("wave", [
    np.zeros(SPEC.sample_rate, np.float32),                                            # silence
    np.random.default_rng(0).standard_normal(300).astype(np.float32) * 0.1,           # shorter than a window
    np.random.default_rng(1).standard_normal(SPEC.sample_rate).astype(np.float32),    # loud noise, clipped
    np.clip(3 * voice_tone(1.0, 200.0, SPEC.sample_rate), -1, 1),                     # clipped voice
    np.full(SPEC.sample_rate, 1e-11, np.float32),                                      # below the zero threshold
    np.concatenate([np.zeros(8000, np.float32), np.full(8000, np.nan, np.float32)]),  # NaN samples
], ids=["silence", "short", "noise", "clipped", "tiny", "nan"])
def test_edge_cases_equal_librosas(wave):
    assert_same_as_librosa(wave)


def test_features_import_neither_librosa_nor_numba():
    """The point of the rewrite: nothing compiles at import or on the first call."""
    code = ("import sys, numpy as np; from preprocessing.audio import audio_features; "
            "audio_features(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'librosa', 'numba'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "[]"
