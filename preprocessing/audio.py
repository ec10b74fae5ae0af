"""Frame-level acoustic features with numpy/scipy (the acoustic LSTM's input).

One row per ``spec.hop_length`` samples (20 ms by default), ``spec.audio_dim`` = 48 columns in the
order of ``spec.AUDIO_FEATURES``: 13 MFCCs, their deltas and delta-deltas, ln f0, voicing, RMS dB,
spectral centroid / bandwidth / roll-off (kHz), flatness, zero-crossing rate, clipped fraction.

The recipe is librosa 0.11's (``stft``, ``feature.melspectrogram/mfcc/delta/rms/spectral_*/
zero_crossing_rate``, ``power_to_db``, ``yin``) with its defaults, written out with the same numpy/scipy
operations in the same precision, so that the features equal those the weights were trained on
(tests/test_audio_features.py checks them against librosa): librosa compiles a dozen numba kernels at
import (~14 s on 2 cores after a fresh install), which this module does not need.

Pitch: YIN (far faster than pYIN, which would blow the real-time budget) gives f0 every frame; YIN
always answers, so a frame counts as voiced only when the waveform's normalised autocorrelation at that
period (``voicing``) exceeds 0.5 and the frame is not silent. Silence and clipping: all log terms are
floored, every column goes through ``nan_to_num``, so all-zero or full-scale audio still gives finite
features.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.signal

from .spec import FeatureSpec

SILENCE_DB = -60.0       # frames quieter than this are unvoiced whatever YIN says
VOICED = 0.5
YIN_TROUGH = 0.1         # librosa.yin's trough_threshold
ROLL_PERCENT = 0.85      # librosa.feature.spectral_rolloff's default
AMIN = 1e-10             # floor of the power terms (power_to_db, flatness)


def level_dbfs(y: np.ndarray) -> float:
    """RMS level of a waveform in dBFS (0 = full scale); -120 for an empty one."""
    return 10 * np.log10(float(np.mean(np.square(y, dtype=np.float64))) + 1e-12) if len(y) else -120.0


def audio_features(wave: np.ndarray, spec: FeatureSpec = FeatureSpec()) -> np.ndarray:
    """(n,) float waveform at ``spec.sample_rate`` -> (frames, spec.audio_dim) float32."""
    y = np.nan_to_num(np.asarray(wave, np.float32)).clip(-1.0, 1.0)
    if len(y) < spec.n_fft:                       # the pitch search needs one full window
        y = np.pad(y, (0, spec.n_fft - len(y)))
    sr, hop, n_fft = spec.sample_rate, spec.hop_length, spec.n_fft
    mag = np.abs(stft(y, n_fft, hop))
    mel = np.einsum("ft,mf->mt", mag ** 2, mel_filters(sr, n_fft, spec.n_mels), optimize=True)
    log_mel = 10.0 * np.log10(np.maximum(AMIN, mel))
    mfcc = scipy.fft.dct(log_mel, axis=0, type=2, norm="ortho")[:13]
    width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
    if width >= 3:                                # librosa.feature.delta: a Savitzky-Golay derivative
        d1 = scipy.signal.savgol_filter(mfcc, width, polyorder=1, deriv=1, axis=-1, mode="nearest")
        d2 = scipy.signal.savgol_filter(mfcc, width, polyorder=2, deriv=2, axis=-1, mode="nearest")
    else:                                         # a single frame has no time derivative
        d1 = d2 = np.zeros_like(mfcc)

    rms_db = 20 * np.log10(np.maximum(rms(mag, n_fft), 1e-5))
    f0 = yin(y, spec.fmin_hz, spec.fmax_hz, sr, n_fft, hop)
    voicing = periodicity(y, f0, sr, n_fft, hop) * (rms_db > SILENCE_DB)
    log_f0 = np.where(voicing > VOICED, np.log(np.maximum(f0, 1.0)), 0.0)

    khz = 1e-3
    freq = np.fft.rfftfreq(n_fft, 1.0 / sr)[:, None]
    centroid = spectral_centroid(mag, freq)
    shape = [centroid * khz, spectral_bandwidth(mag, freq, centroid) * khz, spectral_rolloff(mag, freq) * khz,
             spectral_flatness(mag), zero_crossing_rate(y, n_fft, hop)]
    clip_frac = (np.abs(frame(np.pad(y, n_fft // 2), n_fft, hop)) >= 0.999).mean(axis=0)

    cols = [*mfcc, *d1, *d2, log_f0, voicing, rms_db, *shape, clip_frac]
    n = min(len(c) for c in cols)
    out = np.stack([c[:n] for c in cols], axis=1).astype(np.float32)
    assert out.shape[1] == spec.audio_dim, (out.shape, spec.audio_dim)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def frame(y: np.ndarray, length: int, hop: int) -> np.ndarray:
    """(length, frames) strided view of ``y``: frame i starts at sample i * hop (librosa.util.frame)."""
    return np.lib.stride_tricks.sliding_window_view(y, length)[::hop].T


def stft(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred, zero-padded, periodic-Hann STFT, (1 + n_fft // 2, frames) complex64 (librosa.stft)."""
    window = scipy.signal.get_window("hann", n_fft, fftbins=True)[:, None]
    frames = frame(np.pad(y, n_fft // 2), n_fft, hop)
    out = np.zeros((1 + n_fft // 2, frames.shape[1]), np.complex64, order="F")   # librosa's layout: the sums
    out[:] = scipy.fft.rfft(window * frames, axis=0)                             # below add in its order
    return out


@lru_cache(maxsize=4)
def mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32 Slaney mel filter bank, area-normalised (librosa.filters.mel)."""
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, np.fft.rfftfreq(n_fft, 1.0 / sr))
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    weights.flags.writeable = False               # shared by every call
    return weights


# Slaney's mel scale: linear below 1 kHz, logarithmic above
F_SP, MIN_LOG_HZ, LOG_STEP = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
MIN_LOG_MEL = MIN_LOG_HZ / F_SP


def hz_to_mel(hz: float) -> float:
    return hz / F_SP if hz < MIN_LOG_HZ else MIN_LOG_MEL + np.log(hz / MIN_LOG_HZ) / LOG_STEP


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    hz = F_SP * mels
    log_t = mels >= MIN_LOG_MEL
    hz[log_t] = MIN_LOG_HZ * np.exp(LOG_STEP * (mels[log_t] - MIN_LOG_MEL))
    return hz


def rms(mag: np.ndarray, n_fft: int) -> np.ndarray:
    """Frame RMS from the magnitude spectrum by Parseval (librosa.feature.rms with S=)."""
    x = np.square(mag, dtype=np.float32)
    x[0] *= 0.5
    if n_fft % 2 == 0:
        x[-1] *= 0.5
    return np.sqrt(2 * np.sum(x, axis=0) / n_fft ** 2)


def unit_columns(mag: np.ndarray) -> np.ndarray:
    """Each column divided by its sum; all-zero columns stay zero (librosa.util.normalize, norm=1)."""
    length = np.sum(np.abs(mag).astype(float), axis=0, keepdims=True)
    length[length < np.finfo(mag.dtype).tiny] = 1.0
    out = np.empty_like(mag)
    out[:] = mag / length
    return out


def spectral_centroid(mag: np.ndarray, freq: np.ndarray) -> np.ndarray:
    return np.sum(freq * unit_columns(mag), axis=0)


def spectral_bandwidth(mag: np.ndarray, freq: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    deviation = np.abs(np.subtract.outer(centroid, freq[:, 0]).swapaxes(-2, -1))
    return np.sum(unit_columns(mag) * deviation ** 2, axis=0) ** 0.5


def spectral_rolloff(mag: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """Lowest frequency below which ROLL_PERCENT of the column's magnitude lies."""
    total = np.cumsum(mag, axis=0)
    below = np.where(total < ROLL_PERCENT * total[-1:], np.nan, 1)
    return np.nanmin(below * freq, axis=0)


def spectral_flatness(mag: np.ndarray) -> np.ndarray:
    """Geometric over arithmetic mean of the power spectrum: ~1 for noise, ~0 for a tone."""
    power = np.maximum(AMIN, mag ** 2.0)
    return np.exp(np.mean(np.log(power), axis=0)) / np.mean(power, axis=0)


def zero_crossing_rate(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Share of sign changes in each centred frame, edge-padded; |x| <= 1e-10 counts as +0."""
    frames = frame(np.pad(y, n_fft // 2, mode="edge"), n_fft, hop)
    negative = np.signbit(np.where(np.abs(frames) <= np.float32(1e-10), 0, frames))
    crossings = np.zeros(frames.shape, bool)
    crossings[1:] = negative[1:] != negative[:-1]
    return np.mean(crossings, axis=0)


def yin(y: np.ndarray, fmin: float, fmax: float, sr: int, frame_length: int, hop: int) -> np.ndarray:
    """f0 (Hz) of each centred, zero-padded frame by YIN (de Cheveigné & Kawahara 2002; librosa.yin): the
    first trough of the cumulative mean normalised difference below YIN_TROUGH, else its global minimum,
    refined by parabolic interpolation."""
    frames = frame(np.pad(y, frame_length // 2), frame_length, hop)
    min_period = int(np.floor(sr / fmax))
    max_period = min(int(np.ceil(sr / fmin)), frame_length - 1)
    cmnd = cumulative_mean_normalized_difference(frames, min_period, max_period)
    shifts = parabolic_shifts(cmnd)
    is_trough = np.zeros(cmnd.shape, bool)
    is_trough[1:-1] = (cmnd[1:-1] < cmnd[:-2]) & (cmnd[1:-1] <= cmnd[2:])
    is_trough[-1] = cmnd[-1] < cmnd[-2]
    is_trough[0] = cmnd[0] < cmnd[1]
    below = is_trough & (cmnd < YIN_TROUGH)
    period = np.where(below.any(axis=0), np.argmax(below, axis=0), np.argmin(cmnd, axis=0))
    return sr / (min_period + period + np.take_along_axis(shifts, period[None], axis=0)[0])


def cumulative_mean_normalized_difference(frames: np.ndarray, min_period: int, max_period: int) -> np.ndarray:
    """(max_period - min_period + 1, frames): YIN's d'(tau) for tau in [min_period, max_period]."""
    n_pad = scipy.fft.next_fast_len(2 * frames.shape[0] - 1, real=True)
    spectrum = scipy.fft.rfft(frames, n=n_pad, axis=0)
    acf = scipy.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, n=n_pad, axis=0)[:max_period + 1]
    diff = np.square(frames)
    np.cumsum(diff, out=diff, axis=0)
    # d(k) = 2 * (ACF(0) - ACF(k)) - sum_{m<k} y(m)^2
    k = slice(1, max_period + 1)
    diff[0] = 0
    diff[k] = 2 * (acf[0:1] - acf[k]) - diff[:k.stop - 1]
    mean = np.cumsum(diff[k], axis=0) / np.arange(1, max_period + 1)[:, None]
    denominator = mean[min_period - 1:max_period]
    return diff[min_period:max_period + 1] / (denominator + np.finfo(denominator.dtype).tiny)


def parabolic_shifts(x: np.ndarray) -> np.ndarray:
    """Offset of the parabola through each point and its two neighbours along axis 0, 0 where it would
    move more than one bin and at both ends."""
    a = (x[2:] + x[:-2]).astype(np.float64) - 2 * x[1:-1].astype(np.float64)
    b = (x[2:] - x[:-2]).astype(np.float64) / 2
    shifts = np.zeros_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        shifts[1:-1] = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a)
    return shifts


def periodicity(y: np.ndarray, f0: np.ndarray, sr: int, frame_length: int, hop: int) -> np.ndarray:
    """Normalised autocorrelation of each (centred) frame at lag sr/f0, in [0, 1]: ~1 for a clean
    periodic voice, ~0 for noise or silence. Vectorised over frames."""
    frames = frame(np.pad(y, frame_length // 2), frame_length, hop).T
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
