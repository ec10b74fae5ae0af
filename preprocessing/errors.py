"""Errors raised while turning a user's clip into features.

Every message says what is wrong with the file and what to do about it: the app shows them
verbatim to users, so they are written for people, not for stack traces. All of them are
``ValueError`` subclasses (bad input, not a bug), under one base class ``MediaError``.
"""

from __future__ import annotations

SUPPORTED_HINT = "MP4, WebM, MOV, MKV or AVI"


class MediaError(ValueError):
    """Base class: the clip cannot be turned into features."""


class UnreadableMediaError(MediaError):
    """The file is missing, truncated or corrupt."""

    def __init__(self, name: str, detail: str = ""):
        extra = f" ({detail})" if detail else ""
        super().__init__(f"Could not read '{name}': the file is missing, damaged or not a video{extra}. "
                         f"Re-export or re-record it as {SUPPORTED_HINT} and upload it again.")


class UnsupportedFormatError(MediaError):
    """The container or codec is not one we can decode."""

    def __init__(self, name: str, what: str):
        super().__init__(f"'{name}' is in an unsupported format ({what}). "
                         f"Please convert it to {SUPPORTED_HINT} (H.264, VP8 or VP9 video) and try again.")


class NoVideoStreamError(MediaError):
    def __init__(self, name: str):
        super().__init__(f"'{name}' has no picture (audio only). The model needs to see the speaker's "
                         "face: upload a video clip, not a sound file.")


class EmptyMediaError(MediaError):
    def __init__(self, name: str):
        super().__init__(f"'{name}' is empty (zero length). Record or export a clip of at least one "
                         "second and try again.")


class TooLongError(MediaError):
    def __init__(self, name: str, duration_s: float, max_duration_s: float):
        super().__init__(f"'{name}' is {duration_s:.1f} s long; the limit is {max_duration_s:.0f} s. "
                         "Trim it to a single utterance (a sentence or two) and upload it again.")


class NoFaceError(MediaError):
    def __init__(self, name: str, n_frames: int):
        super().__init__(f"No face was found in any of the {n_frames} frames looked at in '{name}'. "
                         "Make sure the speaker's face is visible, well lit and facing the camera.")


class ImageNotVideoError(MediaError):
    def __init__(self, name: str):
        super().__init__(f"'{name}' is an image, not a video. The model needs a clip of someone speaking: "
                         f"upload a video with sound ({SUPPORTED_HINT}).")


class TooSmallError(MediaError):
    def __init__(self, name: str, width: int, height: int, min_side: int):
        super().__init__(f"'{name}' is only {width}x{height} pixels: too small to see a face. Upload a video at "
                         f"least {min_side} pixels on each side (a webcam or phone recording is fine).")


class TooMuchVideoError(MediaError):
    def __init__(self, name: str, width: int, height: int, fps: float, duration_s: float | None):
        length = f" for {duration_s:.0f} s" if duration_s else " (length not recorded in the file)"
        super().__init__(f"'{name}' is {width}x{height} at {fps:.0f} frames per second{length}: "
                         "more picture than the server decodes for one clip (at most a minute of 1080p at 60 fps, "
                         "or of 4K at 15 fps). Export it at 1080p or lower, or trim it, and upload it again.")


class TooManyFramesError(MediaError):
    def __init__(self, name: str, n_frames: int, duration_s: float, max_rate: float):
        super().__init__(f"'{name}' holds more than {n_frames:,} video frames in {duration_s:.1f} s: over "
                         f"{max_rate:.0f} frames per second, more than a camera records. Re-export it at a usual "
                         "frame rate (25 or 30 fps) and upload it again.")


class DecodeTimeoutError(MediaError):
    def __init__(self, name: str, limit_s: float):
        super().__init__(f"'{name}' took more than {limit_s:.0f} s to decode, longer than the server spends on one "
                         "clip. Export it at 1080p or lower and 30 fps, trim it to a sentence or two, and upload it again.")
