"""What one request answers: the score, its parts and the clip's features (``Prediction``), and the API's JSON of it.

Built by mclmcf.serving.pipeline; read by the page (mclmcf.ui) and returned by the ``/predict`` API."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from preprocessing import ClipFeatures
from preprocessing.expression import expression_summary
from preprocessing.words import TimedWord

from mclmcf.serving.explain import WordAttributions
from mclmcf.serving.voice import VoiceSummary
from mclmcf.serving.weights import LoadedWeights


@dataclass
class Segment:
    start_s: float
    end_s: float
    score: float
    text: str                                      # the words the window was scored with


@dataclass
class Prediction:
    score: float                                   # on the dataset's scale, not clipped
    label_range: float                             # scores live in [-label_range, label_range]
    sentiment_class: str                           # one of messages.SEVEN_CLASSES
    polarity: str                                  # negative / neutral / positive
    contributions: dict[str, float]                # modality -> score change it causes
    tcf_images: dict[str, np.ndarray]              # pair -> (D, D)
    tcf_feature_maps: dict[str, list[np.ndarray]]  # pair -> [(C, H, W) per conv layer]
    clip: ClipFeatures
    timings: dict[str, float]                      # seconds per stage
    features_cached: bool
    transcript: str                                # the text scored
    transcript_source: str                         # "typed" or "asr"
    text_windows: int                              # encoder windows the transcript was scored in
    words: list[TimedWord] | None = None           # the transcript's words with times, when known
    timeline: list[Segment] | None = None
    notices: list[str] = field(default_factory=list)
    attributions: WordAttributions | None = None   # the score over the transcript's words (mclmcf.serving.explain)
    voice: VoiceSummary | None = None
    weights: LoadedWeights | None = None          # the weights that answered (the page names them)

    def to_json(self) -> dict:
        """What the programmatic API returns: small, JSON-serialisable."""
        return {
            "score": round(self.score, 4), "label_range": self.label_range,
            "sentiment_class": self.sentiment_class, "polarity": self.polarity,
            "contributions": {k: round(v, 4) for k, v in self.contributions.items()},
            "duration_s": round(self.clip.duration_s, 3), "face_fraction": round(self.clip.face_fraction, 3),
            "features_cached": self.features_cached, "transcript": self.transcript,
            "transcript_source": self.transcript_source, "text_windows": self.text_windows,
            "timeline": None if self.timeline is None else [dataclasses.asdict(s) for s in self.timeline],
            "expressions": expression_summary(self.clip.expressions, self.clip.face_mask, self.clip.frame_times),
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()}, "notices": self.notices,
            "words": None if self.attributions is None else
            [{"word": w.word, "attribution": round(w.attribution, 4)} for w in self.attributions.words],
            "words_baseline_score": None if self.attributions is None else round(self.attributions.baseline_score, 4),
            "voice": None if self.voice is None else self.voice.to_json(),
        }
