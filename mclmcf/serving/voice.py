"""A one-line summary of the clip's voice: pitch, loudness and speaking rate from the acoustic frames the model reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocessing import ClipFeatures
from preprocessing.audio import VOICED
from preprocessing.words import TimedWord


@dataclass
class VoiceSummary:
    """What the acoustic strip shows, in numbers; None where the clip has no voiced frames (or no words)."""
    pitch_median_hz: float | None      # over voiced frames
    pitch_low_hz: float | None         # 10th percentile
    pitch_high_hz: float | None        # 90th percentile
    speaking_rate_wpm: float | None    # transcript words per minute of speaking time
    loudness_dbfs: float | None        # median frame level while voiced (0 dBFS = full scale)
    voiced_fraction: float             # share of the clip's audio frames that are voiced

    @property
    def pitch_range_semitones(self) -> float | None:
        return None if self.pitch_median_hz is None else 12 * float(np.log2(self.pitch_high_hz / self.pitch_low_hz))

    def line(self) -> str:
        """One sentence for a visitor."""
        if self.pitch_median_hz is None:
            return "Voice: no voiced speech was found, so there is no pitch or loudness to report."
        parts = [f"pitch {self.pitch_low_hz:.0f}–{self.pitch_high_hz:.0f} Hz (median {self.pitch_median_hz:.0f} Hz, "
                 f"a range of {self.pitch_range_semitones:.1f} semitones)"]
        if self.speaking_rate_wpm is not None:
            parts.append(f"about {self.speaking_rate_wpm:.0f} words a minute")
        parts.append(f"loudness {self.loudness_dbfs:.0f} dBFS while speaking (0 is the loudest a recording can hold)")
        return "Voice: " + " · ".join(parts) + f" · voiced {self.voiced_fraction:.0%} of the time."

    def to_json(self) -> dict:
        fields = {**self.__dict__, "pitch_range_semitones": self.pitch_range_semitones}
        return {k: None if v is None else round(float(v), 3) for k, v in fields.items()}


MIN_SPEAKING_S = 0.5    # a shorter span gives no meaningful words-per-minute


def summarise_voice(clip: ClipFeatures, n_words: int, words: list[TimedWord] | None = None) -> VoiceSummary:
    """Pitch and loudness from the acoustic frames the model reads (``ln f0``, ``voicing``, ``RMS dB``);
    speaking time from the recognised words' times when known, else from the first to the last voiced frame."""
    names = clip.spec.audio_features
    audio = clip.audio
    voiced = audio[:, names.index("voicing")] > VOICED
    if not voiced.any():
        return VoiceSummary(None, None, None, None, None, 0.0)
    f0 = np.exp(audio[voiced, names.index("log_f0")])
    level = audio[voiced, names.index("rms_db")]
    if words:
        speaking_s = words[-1].end_s - words[0].start_s
    else:
        frames = np.flatnonzero(voiced)
        speaking_s = (frames[-1] - frames[0] + 1) / clip.spec.audio_fps
    rate = 60 * n_words / speaking_s if n_words and speaking_s >= MIN_SPEAKING_S else None
    low, median, high = np.percentile(f0, [10, 50, 90])
    return VoiceSummary(float(median), float(low), float(high), rate, float(np.median(level)), float(voiced.mean()))
