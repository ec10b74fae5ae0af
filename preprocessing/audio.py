"""Frame-level acoustic features with librosa (the acoustic LSTM's input).

One row per ``spec.hop_length`` samples (20 ms by default), ``spec.audio_dim`` = 48 columns in the
order of ``spec.AUDIO_FEATURES``: 13 MFCCs, their deltas and delta-deltas, ln f0, voicing, RMS dB,
spectral centroid / bandwidth / roll-off (kHz), flatness, zero-crossing rate, clipped fraction.

Pitch: ``librosa.yin`` (far faster than ``pyin``, which would blow the real-time budget) gives
f0 every frame; YIN always answers, so a frame counts as voiced only when the waveform's normalised
autocorrelation at that period (``voicing``) exceeds 0.5 and the frame is not silent. Silence and
clipping: all log terms are floored, every column goes through ``nan_to_num``, so all-zero or
full-scale audio still gives finite features.
"""

from __future__ import annotations

import librosa
import numpy as np

from .spec import FeatureSpec

SILENCE_DB = -60.0       # frames quieter than this are unvoiced whatever YIN says
VOICED = 0.5


def level_dbfs(y: np.ndarray) -> float:
    """RMS level of a waveform in dBFS (0 = full scale); -120 for an empty one."""
    return 10 * np.log10(float(np.mean(np.square(y, dtype=np.float64))) + 1e-12) if len(y) else -120.0


def audio_features(wave: np.ndarray, spec: FeatureSpec = FeatureSpec()) -> np.ndarray:
    """(n,) float waveform at ``spec.sample_rate`` -> (frames, spec.audio_dim) float32."""
    y = np.nan_to_num(np.asarray(wave, np.float32)).clip(-1.0, 1.0)
    if len(y) < spec.n_fft:                       # librosa needs one full window
        y = np.pad(y, (0, spec.n_fft - len(y)))
    sr, hop, n_fft = spec.sample_rate, spec.hop_length, spec.n_fft
    mag = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    mel = librosa.feature.melspectrogram(S=mag ** 2, sr=sr, n_mels=spec.n_mels)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, amin=1e-10, top_db=None), n_mfcc=13)
    width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
    if width >= 3:
        d1 = librosa.feature.delta(mfcc, width=width, order=1, mode="nearest")
        d2 = librosa.feature.delta(mfcc, width=width, order=2, mode="nearest")
    else:                                         # a single frame has no time derivative
        d1 = d2 = np.zeros_like(mfcc)

    rms = librosa.feature.rms(S=mag, frame_length=n_fft)[0]
    rms_db = 20 * np.log10(np.maximum(rms, 1e-5))
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
    assert out.shape[1] == spec.audio_dim, (out.shape, spec.audio_dim)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def periodicity(y: np.ndarray, f0: np.ndarray, sr: int, frame_length: int, hop: int) -> np.ndarray:
    """Normalised autocorrelation of each (centred) frame at lag sr/f0, in [0, 1]: ~1 for a clean
    periodic voice, ~0 for noise or silence. Vectorised over frames."""
    frames = librosa.util.frame(np.pad(y, frame_length // 2), frame_length=frame_length, hop_length=hop).T
    frames = frames[: len(f0)]
    lag = np.clip(np.round(sr / np.maximum(f0[: len(frames)], 1.0)).astype(int), 1, frame_length // 2)
    n = frame_length - lag.max()
    idx = np.arange(n)
    a = frames[:, :n]
    b = np.take_along_axis(frames, idx[None, :] + lag[:, None], axis=1)
    num = (a * b).sum(1)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1)) + 1e-12
    r = np.clip(num / den, 0.0, 1.0)
    return np.pad(r, (0, len(f0) - len(r)))

