"""Live mode: webcam frames and microphone audio streamed in, a running sentiment score out (the app's Live tab).

    session = LiveSessions(max_sessions=1).acquire("tab-id", pipeline)   # mclmcf.serving.live_sessions; None: busy
    session.add_frame(rgb)                               # webcam: face features of each new frame, at once
    update = session.stream_audio(48_000, samples, lambda window: score_window(pipeline, window),
                                  colourer=lambda window, result: colour_words(pipeline, window, result))
    # a microphone chunk (int16 or float, mono or stereo); when a score is due it starts on a thread of
    # its own, and update is the newest finished one (once), else None: the score first, then the same
    # point with the words heard coloured

Each score reads the last ``window_s`` seconds (default 4): their audio through the pipeline's acoustic
features (preprocessing.audio) and its speech recogniser (word timestamps), and the face rows of the
frames that arrived in the window, laid on the weights' frame grid (``spec.video_fps``; each grid point
takes the latest frame before it, so the model sees the frame rate it was trained at whatever rate the
browser sends). Everything uses the FeatureSpec the loaded weights carry. A score is due every
``score_every_s`` (1 s) and, sooner, when a phrase ends (``pause_s`` of quiet after speech), so the score
catches up with what was just said without waiting for the next tick.

Bounded resources: the audio ring holds one window of samples, the frame buffer one window of feature
rows (never the images), the history the last ``history_s`` (60 s) of scores; a session holds about
the same memory after one minute as after ten. A chunk must declare a sample rate of 8-192 kHz and hold at
most ``MAX_CHUNK_S`` of audio (``LiveInputError`` otherwise: a 20 KB chunk declaring 1 Hz would resample to
hundreds of MB). Which tabs may hold a session at once: ``LiveSessions`` (mclmcf.serving.live_sessions).

``score_window`` and ``colour_words`` are pure functions of a ``LiveWindow`` (no session state), so on ZeroGPU
they can run in the GPU worker (``spaces.GPU``) and only their results come back to the session. The score is
shown as soon as it is ready; the words' colours (the page's method, about as long again as the model's score)
follow as a second update of the same point.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

import numpy as np
import soxr

from preprocessing.audio import audio_features, level_dbfs
from preprocessing.clip import face_extractor
from preprocessing.expression import CLASSES, frame_expressions

from mclmcf.serving.explain import WordAttributions
from mclmcf.serving.messages import sentiment_labels
from mclmcf.serving.pipeline import SentimentPipeline, neutral_frames

log = logging.getLogger("mclmcf.app.live")   # the app logs its own lines at INFO (console.setup_logging)
SPEECH_DBFS = -40.0       # a 100 ms block louder than this holds speech (speech is ~-30 to -15 dBFS)
STALE_FRAME_S = 1.0       # a grid point with no frame this recent has no face row (camera stalled)
MAX_FPS = 30              # webcams send at most this many frames a second: bounds the frame buffer whatever the clock
WINDOW_RANGE = (2.0, 10.0)   # seconds; the buffers always hold the longest, so the window can change mid-stream
SAMPLE_RATES = (8_000, 192_000)   # microphone rates accepted (Hz): telephone to studio
MAX_CHUNK_S = WINDOW_RANGE[1]   # audio seconds in one chunk (the page sends 0.1 s, more when the handler lags)
MAX_CHANNELS = 8


class LiveInputError(ValueError):
    """A stream event that live mode refuses; the message is written for the visitor."""


def check_chunk(sample_rate, samples) -> np.ndarray:
    """The microphone chunk as an array if live mode takes it (a declared rate of 8-192 kHz, at most MAX_CHUNK_S
    of audio in at most MAX_CHANNELS channels, numbers); LiveInputError saying what to do otherwise."""
    low, high = SAMPLE_RATES
    is_number = isinstance(sample_rate, (int, np.integer)) and not isinstance(sample_rate, bool)
    if not is_number or not low <= sample_rate <= high:
        declared = f"{sample_rate} Hz" if is_number else "no number"
        raise LiveInputError(f"The microphone stream declared a sample rate of {declared}; live mode takes "
                             f"{low // 1000}-{high // 1000} kHz. Choose another microphone and start again.")
    y = np.asarray(samples)
    if y.dtype.kind not in "iuf" or y.ndim not in (1, 2) or (y.ndim == 2 and not 1 <= y.shape[1] <= MAX_CHANNELS):
        raise LiveInputError("The microphone stream sent something that is not microphone sound. "
                             "Stop and start the microphone again.")
    if len(y) > MAX_CHUNK_S * sample_rate:
        raise LiveInputError(f"The microphone stream sent {len(y) / sample_rate:.1f} s of sound at once; live mode "
                             f"takes at most {MAX_CHUNK_S:g} s at a time. Stop and start the microphone again.")
    return y


@dataclass(frozen=True)
class LiveConfig:
    window_s: float = 4.0         # the rolling window each score reads
    score_every_s: float = 1.0    # a score at least this often
    pause_s: float = 0.3          # quiet after speech that counts as the end of a phrase: score at once
    history_s: float = 60.0       # the timeline shows this much


@dataclass
class LiveWindow:
    """What one score reads, copied out of the session."""
    end_s: float                  # session time of the window's end (seconds since the first chunk)
    waveform: np.ndarray          # (n,) float32 at spec.sample_rate
    vision: np.ndarray            # (Lv, spec.visual_dim) on the spec's frame grid; training mean if no frames
    face_fraction: float          # share of grid points with a face (0 with the camera off)
    expressions: np.ndarray | None   # (7,) mean expression probabilities over the window's faces, None without


@dataclass
class WindowScore:
    score: float
    words: str | None             # what speech recognition heard in the window; None: no recogniser
    timings: dict[str, float]     # seconds: asr, audio, model (the score); explain, once coloured
    audio: np.ndarray | None = None   # the window's acoustic features, which the colours hold fixed
    attributions: WordAttributions | None = None   # the score over the words heard (colour_words; None: not yet)


@dataclass
class LiveUpdate:
    """One point of the running score, as the page shows it."""
    end_s: float
    score: float
    label_range: float
    sentiment_class: str
    polarity: str
    words: str | None
    attributions: WordAttributions | None         # the score over the words heard
    face_fraction: float
    expressions: dict[str, float] | None
    timings: dict[str, float]
    history: list[tuple[float, float]]        # (end_s, score) of the last history_s seconds, oldest first


def score_window(pipeline: SentimentPipeline, window: LiveWindow) -> WindowScore:
    """Recognise the window's speech, compute its acoustic features and score it with its face rows (the words'
    colours are a second step, ``colour_words``, so that the score is shown without waiting for them)."""
    spec = pipeline.weights.spec
    t0 = time.perf_counter()
    heard = pipeline.asr.transcribe(window.waveform, spec.sample_rate) if pipeline.asr else None
    t1 = time.perf_counter()
    audio = audio_features(window.waveform, spec)
    t2 = time.perf_counter()
    words = heard.text if heard else None
    score = pipeline.score(words or "", audio, window.vision)
    return WindowScore(score, words, {"asr": t1 - t0, "audio": t2 - t1, "model": time.perf_counter() - t2}, audio)


def colour_words(pipeline: SentimentPipeline, window: LiveWindow, result: WindowScore) -> WindowScore:
    """``result`` with the words it heard coloured by the page's method (their shares of its score)."""
    if not result.words:
        return result
    start = time.perf_counter()
    attributions = pipeline.explain_words(result.words, result.audio, window.vision, score=result.score)
    return replace(result, attributions=attributions,
                   timings={**result.timings, "explain": time.perf_counter() - start})


class LiveSession:
    """One browser tab's stream: ring buffers for the window's audio and face rows, and the score history.
    add_frame and add_audio may run at the same time (two stream events); buffers are swapped under a lock."""

    def __init__(self, pipeline: SentimentPipeline, config: LiveConfig = LiveConfig()):
        self.pipeline = pipeline
        self.config = config
        self.spec = pipeline.weights.spec
        self.started = time.monotonic()
        self.last_input = self.started
        self._lock = threading.Lock()
        self._resampler: tuple[int, soxr.ResampleStream] | None = None
        self._samples = np.zeros(0, np.float32)          # the last window of audio at spec.sample_rate
        self._received_s = 0.0                           # audio seconds received: the session's clock
        self._frames: deque[tuple[float, np.ndarray, np.ndarray | None]] = deque(   # (time, row, expressions)
            maxlen=int((WINDOW_RANGE[1] + STALE_FRAME_S) * MAX_FPS))
        self._speech_since_score = False
        self._last_score_s = 0.0                         # the first score after score_every_s of audio
        self._history: deque[tuple[float, float]] = deque()
        self._scoring = False
        self._update: LiveUpdate | str | None = None
        model = pipeline.weights.model
        self._vision_mean = neutral_frames(model.vision_norm, 1)   # "no camera": neutral

    def now(self) -> float:
        return time.monotonic() - self.started

    # ---- input -------------------------------------------------------------------------------

    def add_audio(self, sample_rate: int, samples: np.ndarray) -> None:
        """A microphone chunk as Gradio delivers it: int16 or float, (n,) or (n, channels). Raises
        LiveInputError for a rate outside SAMPLE_RATES or a chunk over MAX_CHUNK_S, before any work."""
        y = check_chunk(sample_rate, samples)
        y = y.astype(np.float32) / 32768.0 if y.dtype == np.int16 else y.astype(np.float32)
        if y.ndim == 2:
            y = y.mean(axis=1)
        if self._resampler is None or self._resampler[0] != sample_rate:
            self._resampler = (sample_rate, soxr.ResampleStream(sample_rate, self.spec.sample_rate, 1))
        y = self._resampler[1].resample_chunk(np.ascontiguousarray(y))
        keep = int(WINDOW_RANGE[1] * self.spec.sample_rate)
        with self._lock:
            self._samples = np.concatenate([self._samples, y])[-keep:]
            self._received_s += len(y) / self.spec.sample_rate
            self._speech_since_score |= level_dbfs(y) > SPEECH_DBFS
            self.last_input = time.monotonic()

    def add_frame(self, rgb: np.ndarray) -> None:
        """A webcam frame (H, W, 3) uint8 RGB: its face row now, the image is not kept."""
        frame = np.ascontiguousarray(rgb[..., :3])[None]
        track = face_extractor(self.spec)(frame)
        probabilities = frame_expressions(frame, track.landmarks, track.mask)
        row = track.features[0]
        if getattr(self.spec, "has_expressions", False):   # spec version 2: expressions are vision's last columns
            row = np.concatenate([row, probabilities[0]])
        t = self.now()
        with self._lock:   # not input for the idle clock: only the microphone keeps a session open
            self._frames.append((t, row, probabilities[0] if track.mask[0] else None))
            while self._frames and self._frames[0][0] < t - WINDOW_RANGE[1] - STALE_FRAME_S:
                self._frames.popleft()

    # ---- scoring -----------------------------------------------------------------------------

    def due(self) -> bool:
        """A score is due every score_every_s, and at once when a phrase has just ended."""
        with self._lock:
            since = self._received_s - self._last_score_s
            if since >= self.config.score_every_s:
                return True
            pause = int(self.config.pause_s * self.spec.sample_rate)
            return (self._speech_since_score and len(self._samples) >= pause and since >= self.config.pause_s
                    and level_dbfs(self._samples[-pause:]) <= SPEECH_DBFS)

    def window(self, window_s: float | None = None) -> LiveWindow:
        """Copy out the last window_s seconds (default: the config's) and mark the score as taken."""
        window_s = float(np.clip(window_s or self.config.window_s, *WINDOW_RANGE))
        now = self.now()
        with self._lock:
            waveform = self._samples[-int(window_s * self.spec.sample_rate):].copy()
            frames = [f for f in self._frames if f[0] >= now - window_s - STALE_FRAME_S]
            end_s = self._received_s
            self._last_score_s, self._speech_since_score = end_s, False
        vision, faces = self._vision_grid(frames, now - window_s, now)
        seen = [p for t, _, p in frames if p is not None and t >= now - window_s]
        return LiveWindow(end_s, waveform, vision, faces, np.mean(seen, axis=0) if seen else None)

    def _vision_grid(self, frames: list, start: float, end: float) -> tuple[np.ndarray, float]:
        """Face rows at spec.video_fps from start to end, each the latest frame at or before its grid time
        (zero rows where that frame had no face, as extract_clip writes them); the training mean without frames."""
        if not frames:
            return self._vision_mean.copy(), 0.0
        times = np.array([f[0] for f in frames])
        grid = np.arange(start, end, 1.0 / self.spec.video_fps)
        latest = np.searchsorted(times, grid, side="right") - 1
        fresh = (latest >= 0) & (grid - times[np.maximum(latest, 0)] <= STALE_FRAME_S)
        rows = np.zeros((len(grid), len(frames[0][1])), np.float32)
        has_face = np.zeros(len(grid), bool)
        for i in np.flatnonzero(fresh):
            rows[i] = frames[latest[i]][1]
            has_face[i] = frames[latest[i]][2] is not None
        if not fresh.any():
            return self._vision_mean.copy(), 0.0
        return rows[fresh], float(has_face[fresh].mean())

    def start_scoring(self, scorer, window_s: float | None = None, colourer=None) -> bool:
        """Score the current window on a thread of its own, unless a score is still running; whether it started.
        The stream handler must not wait for it: Gradio keeps only the newest chunk of a busy stream
        handler, so the audio sent meanwhile would be lost. ``scorer(window) -> WindowScore``; ``colourer(window,
        result) -> WindowScore`` (colour_words), if given, runs after the score is shown and its update follows,
        unless a new score is already due then (a phrase has ended: its score goes first, coloured in turn)."""
        with self._lock:
            if self._scoring:
                return False
            self._scoring = True
        window = self.window(window_s)

        def publish(update):
            with self._lock:
                self._update = update

        def run():
            try:
                result = scorer(window)
                update = self.record(window, result)
                publish(update)
                if colourer is not None and result.words and not self.due():
                    coloured = colourer(window, result)
                    publish(replace(update, attributions=coloured.attributions, timings=coloured.timings))
            except Exception:
                log.exception("live scoring failed")
                publish("Scoring this window failed (logged on the server); the next one tries again.")
            with self._lock:
                self._scoring = False

        # the request's context goes along: spaces.GPU (ZeroGPU) reads the visitor's request from it. Not a
        # daemon: an exiting interpreter waits for the score (< 2 s) instead of aborting in the native code it runs
        threading.Thread(target=contextvars.copy_context().run, args=(run,)).start()
        return True

    def stream_audio(self, sample_rate: int, samples: np.ndarray, scorer, window_s: float | None = None,
                     colourer=None) -> LiveUpdate | str | None:
        """What the microphone's stream handler does with each chunk: take it in, start a score when one is
        due (``start_scoring``), and hand back the newest finished one (None: nothing new to show)."""
        self.add_audio(sample_rate, samples)
        if self.due():
            self.start_scoring(scorer, window_s, colourer)
        return self.take_update()

    @property
    def scoring(self) -> bool:
        """Whether a score is running (its thread ends by itself)."""
        with self._lock:
            return self._scoring

    def take_update(self) -> LiveUpdate | str | None:
        """The newest finished score (or what went wrong) once, then None until the next one."""
        with self._lock:
            update, self._update = self._update, None
            return update

    def record(self, window: LiveWindow, result: WindowScore) -> LiveUpdate:
        """Add a score to the history (the last history_s seconds) and return what the page shows."""
        with self._lock:
            self._history.append((window.end_s, result.score))
            while self._history and self._history[0][0] < window.end_s - self.config.history_s:
                self._history.popleft()
            history = list(self._history)
        label_range = self.pipeline.label_range
        sentiment_class, polarity = sentiment_labels(result.score, label_range)
        expressions = (None if window.expressions is None else
                       {c: round(float(p), 4) for c, p in zip(CLASSES, window.expressions)})
        return LiveUpdate(window.end_s, result.score, label_range, sentiment_class, polarity, result.words,
                          result.attributions, window.face_fraction, expressions, result.timings, history)


def warm_up(pipeline: SentimentPipeline) -> None:
    """Load the speech recogniser before the first live visitor (its first call takes ~1.5 s)."""
    rate = pipeline.weights.spec.sample_rate
    if pipeline.asr:
        pipeline.asr.transcribe(np.zeros(rate, np.float32), rate)
