"""Real test media from a real face photograph: tests, the app's example clips, demo training data.

``make_face_clip`` films the astronaut portrait from scikit-image (Eileen Collins, public domain)
with a virtual camera that moves, scales and rotates it, optionally opens the mouth by warping the
lower lip/jaw down and painting the mouth cavity (so mouth features respond), and adds a sound
track: espeak-ng speech when installed, else a voice-like harmonic tone with a known pitch contour.
Written with PyAV in mp4 (h264+aac), webm (vp9/vp8+opus), mkv (h264+opus), mov (h264+aac) or
avi (mpeg4+pcm or mp3). ``Framing`` films it as phones and cameras do too: a wide shot (a small face on a
wall), a tilted head, two faces side by side; ``rotate``/``mirror`` store the pictures turned with a display
matrix saying how to show them upright, as phones store portrait video. Deterministic for a given seed. ``reencode_video`` rewrites a clip's video
timestamps (all zero, repeated, variable rate) to test decoding of broken or unusual files.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# container -> (video codec, audio codec); webm also accepts video_codec="libvpx" (VP8)
CONTAINERS = {
    ".mp4": ("libx264", "aac"), ".mov": ("libx264", "aac"), ".mkv": ("libx264", "libopus"),
    ".webm": ("libvpx-vp9", "libopus"), ".avi": ("mpeg4", "pcm_s16le"),
}
AUDIO_RATE = 48_000
MOUTH_XY = (223.0, 146.0)      # mouth centre in the 512x512 astronaut photograph (mediapipe landmarks 13/14)
FACE_XY = (224.0, 125.0)       # face centre, used to frame the shot
FACE_SPAN_PX = 106.0           # forehead (face-mesh point 10) to chin (152) in the photograph
HEAD_AXES = (80, 100)          # half-width and half-height of an ellipse around the head in the photograph
MOTIONS = ("still", "sway", "exit")
MOUTHS = ("closed", "talk", "open")
AUDIOS = ("speech", "tone", "silence", "none")


@dataclass(frozen=True)
class Framing:
    """Where the camera puts the face. The default is the close-up every test films (forehead to chin 41 % of
    the frame height, the photograph's edges mirrored out to the frame's)."""
    face_height: float | None = None   # forehead-to-chin span / frame height: a wide shot on a textured wall
    face_x: float = 0.5                # the face's centre, share of the frame width
    tilt: float = 0.0                  # head roll in degrees (counter-clockwise), on top of the sway
    twin: bool = False                 # a second face at the right, from 0.8x to 1.25x the first's size


def astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as e:
        raise ImportError("Synthetic clips need scikit-image (a dev dependency): "
                          "pip install -r requirements-dev.txt") from e
    return data.astronaut()


def make_face_clip(path: str | os.PathLike, duration_s: float = 2.0, fps: int = 25,
                   size: tuple[int, int] = (640, 360), motion: str = "sway", mouth: str = "talk",
                   audio: str = "speech", text: str = "I really enjoyed this movie, it was great.",
                   pitch_hz: float | tuple[float, float] = 160.0, face: bool = True,
                   extra_face: bool = False, video_codec: str | None = None, audio_codec: str | None = None,
                   seed: int = 0, framing: Framing = Framing(), rotate: int = 0, mirror: bool = False,
                   silent_start_s: float = 0.0) -> Path:
    """Write a clip of the astronaut face to ``path`` (container chosen by the extension).

    motion: still | sway (slow drift, zoom, tilt) | exit (the face leaves the frame mid-clip).
    mouth: closed | talk (opens and closes ~3 times a second) | open (wide open throughout).
    audio: speech (espeak-ng, falls back to tone) | tone (harmonic voice at pitch_hz, a constant or a
    (start, end) glide) | silence | none (no audio stream). face=False films an empty textured wall;
    extra_face adds a smaller second face in a corner. video_codec / audio_codec override the
    container's defaults (e.g. "libvpx" for VP8 webm, "mp3" for avi). ``rotate`` (a multiple of 90 degrees,
    counter-clockwise) and ``mirror`` are how a player must turn the stored pictures: they are stored turned the
    other way, ``size`` being the upright size. ``silent_start_s`` of silence precede the sound.
    """
    path = Path(path)
    if motion not in MOTIONS or mouth not in MOUTHS or audio not in AUDIOS:
        raise ValueError(f"motion in {MOTIONS}, mouth in {MOUTHS}, audio in {AUDIOS}")
    vcodec, acodec = CONTAINERS[path.suffix.lower()]
    vcodec, acodec = video_codec or vcodec, audio_codec or acodec
    rng = np.random.default_rng(seed)
    n_frames = max(1, round(duration_s * fps))
    wave = None if audio == "none" else _soundtrack(audio, duration_s, text, pitch_hz, rng)
    if wave is not None and silent_start_s:
        wave = np.concatenate([np.zeros(round(silent_start_s * AUDIO_RATE), np.float32), wave])[:len(wave)]
    photo = astronaut() if face else _wall(rng)
    wall = _wall(np.random.default_rng(seed + 1)) if framing.face_height else None
    turns = (rotate // 90) % 4
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = *(size[::-1] if turns % 2 else size), "yuv420p"
        if rotate or mirror:
            vs.set_display_rotation(90 * turns, hflip=mirror)
        if vcodec.startswith("libvpx"):
            vs.options = {"deadline": "realtime", "cpu-used": "8", "b": "1M"}
        elif vcodec == "libx264":
            vs.options = {"preset": "ultrafast", "crf": "23"}
        elif vcodec == "libx265":                     # HEVC as iPhones write it: tagged hvc1, not hev1
            vs.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
            vs.codec_tag = "hvc1"
        aus = None
        if wave is not None:
            aus = out.add_stream(acodec, rate=AUDIO_RATE)
            aus.layout = "mono"
        for i in range(n_frames):
            img = _render(photo, i / fps, duration_s, size, motion, mouth if face else "closed", extra_face and face,
                          framing, wall)
            img = np.ascontiguousarray(np.rot90(img[:, ::-1] if mirror else img, -turns))   # as stored
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if aus is not None:
            _write_audio(out, aus, wave)
    return path


def face_frames(duration_s: float, fps: int = 25, size: tuple[int, int] = (640, 360), motion: str = "sway",
                mouth: str = "talk"):
    """The RGB frames make_face_clip films, one at a time and not encoded: for streams (live mode)."""
    photo = astronaut()
    for i in range(max(1, round(duration_s * fps))):
        yield _render(photo, i / fps, duration_s, size, motion, mouth, False)


def _render(photo: np.ndarray, t: float, duration: float, size: tuple[int, int], motion: str,
            mouth: str, extra_face: bool, framing: Framing = Framing(), wall: np.ndarray | None = None) -> np.ndarray:
    w, h = size
    src = _open_mouth(photo, _mouth_opening(mouth, t)) if mouth != "closed" else photo
    # virtual camera: the head (~180 px in the photograph) fills ~70% of the frame height at zoom 1
    zoom, angle, dx, dy = 1.0, framing.tilt, 0.0, 0.0
    if motion in ("sway", "exit"):
        zoom = 1.0 + 0.12 * np.sin(2 * np.pi * 0.4 * t)
        angle += 6.0 * np.sin(2 * np.pi * 0.3 * t)
        dx, dy = 0.08 * w * np.sin(2 * np.pi * 0.25 * t), 0.04 * h * np.sin(2 * np.pi * 0.35 * t)
    scale = zoom * (framing.face_height * h / FACE_SPAN_PX if framing.face_height else 0.7 * h / 180.0)
    if motion == "exit" and t > duration / 2:
        dy -= 265 * scale                   # tilt down to the space suit: no face in the second half
    m = cv2.getRotationMatrix2D(FACE_XY, angle, scale)
    m[:, 2] += (framing.face_x * w + dx - FACE_XY[0], h / 2 + dy - FACE_XY[1])
    if wall is None:
        img = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    else:   # the photograph on a wall: mirrored edges would show more faces
        img = cv2.warpAffine(src, m, (w, h), dst=cv2.resize(wall, (w, h)), flags=cv2.INTER_AREA,
                             borderMode=cv2.BORDER_TRANSPARENT)
    if framing.twin:                        # the same face again at the right, growing past the first
        grow = 0.8 + 0.45 * t / max(duration, 1e-6)
        twin = cv2.getRotationMatrix2D(FACE_XY, 0.0, scale / zoom * grow)
        twin[:, 2] += (0.75 * w - FACE_XY[0], h / 2 - FACE_XY[1])
        head = cv2.ellipse(np.zeros(photo.shape[:2], np.uint8), tuple(map(int, FACE_XY)), HEAD_AXES, 0, 0, 360, 1, -1)
        mask = cv2.warpAffine(head, twin, (w, h)) > 0
        img[mask] = cv2.warpAffine(src, twin, (w, h), flags=cv2.INTER_LINEAR)[mask]
    if extra_face:                          # a second, smaller face in the top-left corner
        small = cv2.getRotationMatrix2D(FACE_XY, 0.0, 0.3 * h / 180.0)
        small[:, 2] += (0.12 * w - FACE_XY[0], 0.2 * h - FACE_XY[1])
        thumb = cv2.warpAffine(photo, small, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        mask = cv2.warpAffine(np.ones(photo.shape[:2], np.uint8), small, (w, h)) > 0
        img[mask] = thumb[mask]
    return img


def _mouth_opening(mouth: str, t: float) -> float:
    """Lip gap in photograph pixels (closed lips are ~7 px apart in the photo)."""
    return 14.0 if mouth == "open" else 7.0 * (1 - np.cos(2 * np.pi * 3.0 * t))


def _open_mouth(photo: np.ndarray, gap: float) -> np.ndarray:
    """Pull the lower lip and jaw down by ``gap`` px and paint the dark mouth cavity in between."""
    if gap < 0.5:
        return photo
    h, w = photo.shape[:2]
    mx, my = MOUTH_XY
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    across = np.exp(-(((xs - mx) / 26.0) ** 2))                 # fades out beyond the mouth corners
    below = np.clip((ys - my) / 4.0, 0, 1) * np.clip((my + 60 - ys) / 40.0, 0, 1)  # lip..chin
    shifted = cv2.remap(photo, xs, (ys - gap * across * below).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = shifted.copy()
    cv2.ellipse(out, (int(mx), int(my + gap / 2)), (17, max(1, int(gap / 2))), 0, 0, 360, (45, 15, 20), -1)
    return out


def _wall(rng: np.random.Generator) -> np.ndarray:
    """A smooth textured background with no face in it."""
    noise = rng.random((16, 16, 3)).astype(np.float32)
    return (cv2.resize(noise, (512, 512), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 200 + 30).astype(np.uint8)


def _soundtrack(kind: str, duration: float, text: str, pitch_hz, rng: np.random.Generator) -> np.ndarray:
    n = int(duration * AUDIO_RATE)
    if kind == "silence":
        return np.zeros(n, np.float32)
    if kind == "speech" and shutil.which("espeak-ng"):
        speech = speak(text)
        out = np.zeros(n, np.float32)
        out[: min(n, len(speech))] = speech[:n]
        return out
    return voice_tone(duration, pitch_hz, AUDIO_RATE, rng)


def voice_tone(duration: float, pitch_hz: float | tuple[float, float], sr: int,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """A voice-like signal: harmonics with a 1/k roll-off at the given pitch (or linear glide),
    syllable-rate (4 Hz) amplitude modulation and a little breath noise."""
    rng = rng or np.random.default_rng(0)
    t = np.arange(int(duration * sr)) / sr
    f0 = np.interp(t, [0, duration], np.broadcast_to(np.asarray(pitch_hz, float), (2,)))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 9) if (k * f0.max()) < sr / 2)
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t)
    y = 0.3 * envelope * voice / np.abs(voice).max() + 0.003 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def speak(text: str, sample_rate: int = AUDIO_RATE, voice: str | None = None, words_per_minute: int = 150) -> np.ndarray:
    """``text`` spoken by espeak-ng (its default voice unless ``voice``, e.g. "en-us+f3"), mono
    float32 at ``sample_rate``, peak 0.8."""
    import soundfile as sf
    import soxr
    command = ["espeak-ng", "-s", str(words_per_minute), *(["-v", voice] if voice else []), "--stdout"]
    # the text goes through stdin: as an argument, one starting with "-" would be read as an option
    wav = subprocess.run(command, input=text.encode(), check=True, capture_output=True).stdout
    y, sr = sf.read(io.BytesIO(wav), dtype="float32")
    y = soxr.resample(y.mean(axis=1) if y.ndim > 1 else y, sr, sample_rate)
    return (0.8 * y / max(1e-6, float(np.abs(y).max()))).astype(np.float32)


def _write_audio(out, stream, wave: np.ndarray) -> None:
    """Encode mono float audio in codec-sized chunks (opus/aac/mp3 need fixed frame sizes)."""
    fmt = stream.codec_context.codec.audio_formats[0].name if stream.codec_context.codec.audio_formats else "s16"
    chunk = stream.codec_context.frame_size or 1024
    pcm = np.clip(wave, -1, 1)
    dtype, scale = {"s16": (np.int16, 32767), "s32": (np.int32, 2**31 - 1)}.get(fmt[:3], (np.float32, 1))
    for start in range(0, len(pcm), chunk):
        arr = (pcm[start:start + chunk] * scale).astype(dtype)
        frame = av.AudioFrame.from_ndarray(arr[None, :], format=fmt, layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def make_plain_clip(path: str | os.PathLike, duration_s: float = 2.0, fps: int = 25,
                    size: tuple[int, int] = (320, 180), rgb: tuple[int, int, int] = (0, 0, 0),
                    audio: str = "tone", video_codec: str | None = None) -> Path:
    """One flat colour for the whole clip (no face), fast to write at any size: worst-case clips for the
    limits (a black 4K60 minute, a 1x1 video, a clip past the duration cap). ``audio``: tone | none."""
    path = Path(path)
    vcodec, acodec = CONTAINERS[path.suffix.lower()]
    vcodec = video_codec or vcodec
    # converted once: the encoder then gets the same yuv420p frame every time (the conversion dominates at 4K)
    frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), rgb, np.uint8), format="rgb24").reformat(
        format="yuv420p")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        if vcodec == "libx264":
            vs.options = {"preset": "ultrafast"}
        aus = None
        if audio != "none":
            aus = out.add_stream(acodec, rate=AUDIO_RATE)
            aus.layout = "mono"
        for i in range(max(1, round(duration_s * fps))):
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if aus is not None:
            _write_audio(out, aus, voice_tone(duration_s, 160.0, AUDIO_RATE))
    return path


def reencode_video(src: str | os.PathLike, dst: str | os.PathLike, stamp=None, rate: int = 10,
                   time_base: Fraction = Fraction(1, 1000), codec_options: dict | None = None,
                   options: dict | None = None, transform=None) -> Path:
    """Re-encode ``src``'s video (VP9 for .webm, else H.264) at a stated ``rate``, frame i stamped
    ``stamp(i)`` in ``time_base`` units; ``stamp=None`` leaves the frames without pts, which the encoder
    writes as 0 (a broken file, for tests). ``transform`` (VideoFrame -> VideoFrame) reframes each picture
    before it is stamped. The audio packets are copied; ``options`` go to the muxer."""
    dst = Path(dst)
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options or {}) as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libvpx-vp9" if dst.suffix == ".webm" else "libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.options = codec_options or {}
        if stamp:
            vout.time_base = vout.codec_context.time_base = time_base     # so the stamps survive the encoder
        aout = out.add_stream_from_template(ain)
        i = 0
        for packet in inp.demux(vin, ain):
            if packet.dts is None:
                continue
            if packet.stream is ain:
                packet.stream = aout
                out.mux(packet)
                continue
            for frame in packet.decode():
                frame = transform(frame) if transform else frame
                frame.pts, frame.time_base = (stamp(i), time_base) if stamp else (None, frame.time_base)
                i += 1
                out.mux(vout.encode(frame))
        out.mux(vout.encode(None))
    return dst
