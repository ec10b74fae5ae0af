"""Raw media -> model-ready features (audio, visual, text), versioned by a FeatureSpec.

    from preprocessing import extract_clip, FeatureSpec
    clip = extract_clip("talk.mp4")            # ClipFeatures: .audio (La, 48), .vision (Lv, 23), ...
    clip = extract_clip("talk.mp4", FeatureSpec.of_version(1))   # version 1: .vision (Lv, 16), geometry only
"""

from .clip import ClipFeatures, draw_face_mesh, extract_clip
from .errors import (EmptyMediaError, MediaError, NoFaceError, NoVideoStreamError,
                     TooLongError, UnreadableMediaError, UnsupportedFormatError)
from .spec import (AUDIO_FEATURES, SPEC_VERSION, VISUAL_FEATURES, VISUAL_FEATURES_BY_VERSION, FeatureSpec,
                   FeatureSpecMismatch)
from .encoders import load_tokenizer, resolve_text_encoder
from .text import text_bert, tokenize

__all__ = [
    "ClipFeatures", "draw_face_mesh", "extract_clip", "FeatureSpec", "FeatureSpecMismatch", "SPEC_VERSION",
    "AUDIO_FEATURES", "VISUAL_FEATURES", "VISUAL_FEATURES_BY_VERSION", "MediaError", "UnreadableMediaError",
    "UnsupportedFormatError", "NoVideoStreamError", "EmptyMediaError", "TooLongError",
    "NoFaceError",
    "load_tokenizer", "resolve_text_encoder", "text_bert", "tokenize",
]
