"""Decode a clip with PyAV (bundled FFmpeg, no system ffmpeg): 16 kHz mono float32 audio and RGB
frames sampled at a fixed rate.

Every container PyAV can demux works (mp4, webm, mov, mkv, avi, ...), including browser webcam
recordings (webm vp8/vp9 + opus, or mp4, often without a duration in the header and with a
variable frame rate). Only the sampled frames are converted to RGB: the codec still has to decode
every frame, but the colour conversion and copy are skipped for the rest.

Frame times come from the video's timestamps when they can be trusted: present on every frame,
strictly increasing in display order and implying a possible average rate (1-240 fps); variable
frame rates pass, the timestamps being their only true clock. Otherwise (all zero, repeated,
decreasing, or missing and invented by a muxer 1 ms apart) frames are timed by their order at the
stream's nominal rate, and ``Media.notices`` says so. Both samplings run in the one decoding pass,
because whether the timestamps hold is known only at the end.

Frames come out as they are meant to be seen: phones store portrait video sideways (or upside down,
or mirrored) with a display matrix saying how to turn it, and the sampled frames are turned that way
(``orientation``), so the face mesh, the expression crops and the key frame all see an upright picture.

A file without a sound track is decoded as a silent one of the video's length (``Media.sound_track`` is
False): both are scored on the words and the face, and the visitor is told (serving/pipeline.py's
``sound_notice`` holds that rule and its words).

Bounded work whatever the header claims: the decoded frames are checked as they come (pixels against
MAX_DECODE_PIXELS, at most 240 frames per second of the clip's longest clock: header, audio or timestamps),
each sampling keeps at most ``fps`` x the duration cap, and decoding stops after ``max_decode_s``.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from .errors import (DecodeTimeoutError, EmptyMediaError, ImageNotVideoError, NoVideoStreamError,
                     TooLongError, TooManyFramesError, TooMuchVideoError, TooSmallError, UnreadableMediaError,
                     UnsupportedFormatError)

MIN_SIDE = 64                               # pixels: smaller frames cannot show a face to the face mesh
MAX_DECODE_PIXELS = 1920 * 1080 * 60 * 60   # per clip: a minute of 1080p60; every frame is decoded, sampled or not
MAX_DECODE_S = 120.0    # wall-clock seconds one clip may decode (a 4K15 minute took 22 s on 2 busy cores)
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".ogv", ".3gp", ".flv", ".wmv", ""}


@dataclass
class Media:
    waveform: np.ndarray      # (n,) float32 in [-1, 1], mono
    sample_rate: int
    frames: np.ndarray        # (Lv, H, W, 3) uint8 RGB, sampled at `fps`
    frame_times: np.ndarray   # (Lv,) float32 seconds
    duration_s: float
    notices: list[str] = field(default_factory=list)   # what the user should know about the file's timing
    sound_track: bool = True  # False: the file has none, and ``waveform`` is silence as long as the video


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB blocks (feature caches, checked model files)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_media(path: str | os.PathLike, fps: float = 5.0, sample_rate: int = 16_000,
               max_duration_s: float | None = 60.0, max_side: int = 640, max_decode_s: float = MAX_DECODE_S) -> Media:
    """Decode ``path``; frames are downscaled so the longer side is at most ``max_side``."""
    path = Path(path)
    name = path.name
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise UnsupportedFormatError(name, f"'{path.suffix}' files are not video")
    if not path.is_file():
        raise UnreadableMediaError(name, "no such file")
    if path.stat().st_size == 0:
        raise EmptyMediaError(name)
    try:
        container = av.open(str(path))
    except av.EOFError as e:      # a header and nothing after it
        raise EmptyMediaError(name) from e
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise UnreadableMediaError(name, type(e).__name__) from e
    with container:
        if container.format.name.endswith("_pipe") or container.format.name == "image2":
            raise ImageNotVideoError(name)
        if not container.streams.video:
            raise NoVideoStreamError(name)
        vstream = container.streams.video[0]
        astream = container.streams.audio[0] if container.streams.audio else None
        for s in [s for s in (vstream, astream) if s is not None]:
            if s.codec_context is None or s.codec_context.name in ("", None):
                raise UnsupportedFormatError(name, f"no decoder for the {s.type} codec")
        stated = stated_duration(container)
        # the cap gets 0.5 s of grace: containers round durations and codecs pad audio
        if stated and max_duration_s and stated > max_duration_s + 0.5:
            raise TooLongError(name, stated, max_duration_s)
        _check_picture(vstream, name, stated, max_duration_s)
        vstream.thread_type = "AUTO"
        try:
            frames, times, wave, length, notices = _decode(container, vstream, astream, fps, sample_rate, max_side,
                                                           max_duration_s, stated, max_decode_s, name)
        except av.FFmpegError as e:
            raise UnreadableMediaError(name, f"decoding failed: {type(e).__name__}") from e
    if len(frames) == 0 or (astream is not None and len(wave) == 0):
        raise EmptyMediaError(name)
    if astream is None:     # silence as long as the video: the features then read as a silent track's do
        wave = np.zeros(round(max(length, float(times[-1])) * sample_rate), np.float32)
    duration = max(len(wave) / sample_rate, float(times[-1]))
    longest = max(duration, length)     # the longer clock: a short sound track or sparse samples hide no long video
    if max_duration_s and longest > max_duration_s + 0.5:
        raise TooLongError(name, longest, max_duration_s)
    return Media(wave, sample_rate, np.stack(frames), np.asarray(times, np.float32), duration, notices,
                 sound_track=astream is not None)


DEFAULT_RATE = 30.0     # frames per second assumed when the stream states no usable rate (browser recorders)
RATE_RANGE = (1.0, 240.0)   # plausible frame rates, stated or implied by the timestamps


def stated_duration(container) -> float | None:
    """The longest duration the header states, container or stream (seconds); None when none is stated."""
    stated = [container.duration / 1e6 if container.duration else 0.0]
    stated += [float(s.duration * s.time_base) for s in container.streams if s.duration and s.time_base]
    return max(stated) or None


def nominal_rate(vstream) -> float | None:
    """The stream's stated frame rate, if one is plausible (1-240 fps)."""
    for rate in (vstream.guessed_rate, vstream.base_rate, vstream.codec_context.framerate, vstream.average_rate):
        if rate and RATE_RANGE[0] <= float(rate) <= RATE_RANGE[1]:
            return float(rate)
    return None


def orientation(frame: av.VideoFrame) -> tuple[int, bool]:
    """(quarter turns counter-clockwise, then a left-right mirror) that show ``frame`` as it is meant to be seen,
    from its display matrix (libavutil/display.h; PyAV: ``VideoStream.set_display_rotation``). Its 2x2 part
    maps stored to displayed pixels, x right and y down: a negative determinant is a mirror, applied after the
    turn (a vertical flip is a half turn and a mirror). (0, False) without a matrix or for a skewed one."""
    side = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    if side is None:
        return 0, False
    a, b, _, c, d = (np.frombuffer(side, np.int32)[:5] / 65536.0)
    mirror = a * d - b * c < 0
    if mirror:
        a, c = -a, -c
    turns = np.degrees(np.arctan2(c, a)) / 90
    if abs(turns - round(turns)) > 0.05:     # not a multiple of 90 degrees: not a phone's rotation
        return 0, False
    return round(turns) % 4, bool(mirror)


TURN_CCW = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}   # np.rot90's turns


def upright(image: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """``image`` (H, W, 3) turned and mirrored as ``orientation`` says, contiguous (OpenCV: 0.2 ms a 640x360
    frame, where copying numpy's turned view took 2 ms)."""
    image = cv2.rotate(image, TURN_CCW[turns]) if turns else image
    return cv2.flip(image, 1) if mirror else image


class RGBConverter:
    """Sampled frames -> (H, W, 3) uint8 RGB arrays whose longer side is at most ``max_side``, both sides even.

    A larger frame is first shrunk in its own pixel format (YUV) by area averaging, then converted at the small
    size: 1 ms a 1080p frame, where scaling and converting to rgb24 in one bilinear step took 4-5 ms (the
    pixels differ by the filter: mean 1.3-1.8 grey levels). Frames within ``max_side`` take that one step as
    before, so close-ups keep their features bit for bit. The two swscale contexts are kept from frame to
    frame, single-threaded: ``to_ndarray(width=, height=)`` built one, with its threads, for every frame."""

    def __init__(self):
        self.shrink, self.convert = VideoReformatter(), VideoReformatter()

    def __call__(self, frame: av.VideoFrame, max_side: int) -> np.ndarray:
        scale = min(1.0, max_side / max(frame.width, frame.height))
        w, h = round(frame.width * scale) // 2 * 2, round(frame.height * scale) // 2 * 2
        if scale < 1:
            frame = self.shrink.reformat(frame, w, h, interpolation="AREA", threads=1)
        return self.convert.reformat(frame, w, h, "rgb24", threads=1).to_ndarray()


class _Sampler:
    """Keeps the first frame at or after each sample time k / fps, at most ``capacity`` frames."""

    def __init__(self, fps: float, capacity: float):
        self.fps, self.capacity, self.next_t, self.picked = fps, capacity, 0.0, {}   # picked: frame index -> time (s)

    def wants(self, t: float) -> bool:
        return t + 1e-3 >= self.next_t and len(self.picked) < self.capacity

    def take(self, index: int, t: float) -> None:
        self.picked[index] = t
        self.next_t = (int(t * self.fps + 1e-6) + 1) / self.fps


def _check_picture(vstream, name: str, duration: float | None, max_duration_s: float | None) -> None:
    """Refuse, before decoding, frames too small for a face and more pixels than MAX_DECODE_PIXELS (the
    decoder's work, which downscaling cannot save; a missing duration counts as the cap). The header can lie:
    _decode checks the frames again as they come."""
    w, h = vstream.codec_context.width, vstream.codec_context.height
    if 0 < min(w, h) < MIN_SIDE:
        raise TooSmallError(name, w, h, MIN_SIDE)
    rate = float(vstream.average_rate or vstream.guessed_rate or 0)
    if w * h * rate * (duration or max_duration_s or 0) > MAX_DECODE_PIXELS:
        raise TooMuchVideoError(name, w, h, rate, duration)


def _decode(container, vstream, astream, fps: float, sample_rate: int, max_side: int, max_duration_s: float | None,
            stated: float | None, max_decode_s: float, name: str):
    """One demux pass over both streams: video frames sampled twice, by timestamp and by order at the
    nominal rate (the timestamp sampling is used if the timestamps held to the end), and all audio
    resampled to mono float32. Returns the frames, their times, the audio, the video's length by the
    clock used, and the notices."""
    rate = nominal_rate(vstream)
    limit = max_duration_s + 0.5 if max_duration_s else float("inf")
    by_stamp, by_order = _Sampler(fps, fps * limit + 2), _Sampler(fps, fps * limit + 2)
    images, chunks = {}, []
    index, start, last, stamps_ok, n_audio, pixels, turn = -1, None, None, True, 0, 0, (0, False)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    to_rgb = RGBConverter()
    deadline = time.monotonic() + max_decode_s
    for packet in container.demux(*(s for s in (vstream, astream) if s is not None)):
        if time.monotonic() > deadline:
            raise DecodeTimeoutError(name, max_decode_s)
        for frame in packet.decode():
            if packet.stream.type == "audio":
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    n_audio += chunks[-1].size
                continue
            index += 1
            if index == 0:
                turn = orientation(frame)     # the clip's: the matrix is the stream's, repeated on every frame
            if start is None and frame.time is not None and index == 0:
                start = frame.time
            t = None if frame.time is None or start is None else frame.time - start
            if stamps_ok and (t is None or (last is not None and t <= last)):
                stamps_ok = False
                images = {i: images[i] for i in by_order.picked}   # the timestamp sampling is void
            last = t
            # the clip's longest clock so far; more frames than RATE_RANGE[1] a second of it is a frame flood
            clock = max(stated or 0.0, n_audio / sample_rate, t if stamps_ok else 0.0)
            if index + 1 > RATE_RANGE[1] * (clock + 1.0):
                raise TooManyFramesError(name, int(RATE_RANGE[1] * (clock + 1.0)), clock, RATE_RANGE[1])
            pixels += frame.width * frame.height
            if pixels > MAX_DECODE_PIXELS:
                raise TooMuchVideoError(name, frame.width, frame.height, (index + 1) / max(clock, 1.0), stated)
            t_order = index / (rate or DEFAULT_RATE)
            take_stamp = stamps_ok and by_stamp.wants(t)
            take_order = by_order.wants(t_order)
            if take_stamp or take_order:
                images[index] = upright(to_rgb(frame, max_side), *turn)
            if take_stamp:
                by_stamp.take(index, t)
            if take_order:
                by_order.take(index, t_order)
        t_order = max(index, 0) / (rate or DEFAULT_RATE)
        seen = max(n_audio / sample_rate, min(last, t_order) if stamps_ok and last is not None else t_order)
        if seen > limit:
            raise TooLongError(name, seen, max_duration_s)
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    wave = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if stamps_ok and index > 0 and not RATE_RANGE[0] <= index / last <= RATE_RANGE[1]:
        stamps_ok = False
    notices = []
    if not stamps_ok and index >= 0:
        stated = f"its stated {rate:g} fps" if rate else f"an assumed {DEFAULT_RATE:g} fps (the file states none)"
        notices.append(f"The video's timestamps could not be trusted (missing, not increasing, or implying an "
                       f"impossible frame rate), so its frames were timed by their order at {stated}.")
    picked = by_stamp.picked if stamps_ok else by_order.picked
    length = (last if stamps_ok and last is not None else max(index, 0) / (rate or DEFAULT_RATE))
    return ([images[i] for i in picked], list(picked.values()),
            np.nan_to_num(wave.astype(np.float32, copy=False)), length, notices)


