"""Video (+ transcript) -> features -> sentiment score, TCF maps and per-modality contributions.

Shared by the app and scripts; no UI code. Feature extraction (the slow part: face mesh on every
sampled frame) is cached by file content and extractor settings, so re-running a clip with an
edited transcript only runs the model.

Per-modality contribution = score(all modalities) - score(that modality neutralised), with
text -> an empty transcript, audio / vision -> every frame at the training mean (zero after the
model's standardisation). Positive means the modality pushed the score up.

Transcript: the typed one, or, when the box is empty, what speech recognition hears
(preprocessing.asr); no speech heard is an InputError, not a neutral score. A transcript longer
than the text encoder's window (the weights' ``config.max_text_len`` tokens, 50 for weights that do not
record it) is cut into consecutive token windows, each scored with the clip's voice and face, and the
score is the mean of the windows' scores weighted by their token counts (every token counts once); the
TCF maps shown are the first window's. A typed transcript of more than ``max_text_windows`` windows is
refused before any work (cost grows with tokens, not characters: 2,000 "{" are 2,000 tokens). Every score
goes through mclmcf.serving.scoring: the transcript's windows pass the encoder once per request, and
the voice and face ablations reuse their vectors.

Silence: a sound track whose whole-clip level is below ``SILENCE_DBFS`` (an all-zero track, a muted
microphone) or with fewer than ``MIN_VOICED`` of its frames voiced (noise, music without a voice) still
gets a score, but the visitor is told that the voice could not count (``Prediction.notices``).

Timeline (long clips): the clip is cut into windows of ``timeline_window_s`` seconds and each window
is scored with its own audio and face frames and the words spoken in it (by word middle), from the
speech recogniser's word times, or from a typed transcript aligned to the recognised words
(preprocessing.words.align_words). A window without words gets an empty text. Without word times
(no recogniser, or it heard nothing) every window shares the full transcript, and a notice says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import torch

from preprocessing import ClipFeatures, FeatureSpec, extract_clip
from preprocessing.asr import SpeechRecognitionError, speech_recognizer
from preprocessing.audio import level_dbfs
from preprocessing.language import untrusted_notice
from preprocessing.media import file_sha256
from preprocessing.text import count_windows
from preprocessing.words import TimedWord, align_words, words_in_span

from mclmcf.serving.cache import LRUCache
from mclmcf.serving.explain import WordAttributions, attribute_words
from mclmcf.serving.messages import megabytes, sentiment_labels, shown, size_over
from mclmcf.serving.prediction import Prediction, Segment
from mclmcf.serving.scoring import audio_visual_batch, score_items, score_vectors, text_vectors
from mclmcf.serving.voice import summarise_voice
from mclmcf.serving.weights import LoadedWeights

MODALITIES = ("text", "audio", "vision")
FPS_RANGE = (1, 25)      # face frames sampled per second that a request may ask for
MIN_WINDOW_S = 1.0       # a shorter timeline window holds too little voice and face to score
MAX_WINDOWS = 64         # timeline windows per request (a 60 s clip at the 1 s minimum makes 60)
# encoder windows a typed transcript may need: 2,000 characters of English prose are 420-600 tokens (MiniLM's and
# MPNet's tokenizers alike), 9-13 windows of 50 tokens (7-10 of 64), so 20 leaves room, while 2,000 "{" (2,000
# tokens, 42 windows of 50) are refused
MAX_TEXT_WINDOWS = 20
MAX_FILE_BYTES = 50_000_000   # largest clip file; the app gives Gradio's upload limit this same number of bytes
# One extraction at a time per process: a 60 s clip at 25 fps holds ~2 GB of decoded frames while it
# runs, and the face mesh (one locked graph) runs one clip at a time anyway.
_extraction_slot = threading.Lock()
SILENCE_DBFS = -50.0    # whole-clip RMS level below which the sound track counts as silent (speech is ~-30 to -15)
MIN_VOICED = 0.05       # share of voiced audio frames below which no voice was heard (speech: ~0.3-0.6)


class InputError(ValueError):
    """A request the pipeline cannot answer; the message is written for the user."""


def _number(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def neutral_frames(norm: torch.nn.Module, n: int) -> np.ndarray:
    """``n`` frames at the training mean: what the model reads as a neutral acoustic or visual input (zero after
    its standardisation). ``norm``: the model's audio_norm or vision_norm. (n, features), read-only."""
    mean = norm.mean.float().cpu().numpy().reshape(1, -1)
    return np.broadcast_to(mean, (n, mean.shape[1]))


def timeline_windows(duration_s: float, window_s: float) -> list[tuple[float, float]]:
    """(start, end) of each window; a tail shorter than half a window is folded into the last one."""
    edges = list(np.arange(0.0, duration_s, window_s)) + [duration_s]
    if len(edges) > 2 and edges[-1] - edges[-2] < window_s / 2:
        edges.pop(-2)
    return list(zip(edges[:-1], edges[1:]))


def sound_notice(clip: ClipFeatures) -> str | None:
    """What to tell the visitor when the sound track holds no voice the model could use, else None. One rule for a
    file without a sound track and a silent one: both are scored on the words and the face, with this notice."""
    if not clip.sound_track:
        return ("The clip has no sound track: it was scored as a silent one, on the words and the face. Record or "
                "export it with sound (check that the microphone was on) for the voice to count.")
    level = level_dbfs(clip.waveform)
    if level < SILENCE_DBFS:
        return (f"The sound track is silent ({level:.0f} dBFS, below {SILENCE_DBFS:.0f}): the voice could not count "
                "and the score rests on the words and the face. Check that the microphone was on.")
    voiced = float(np.mean(clip.audio[:, clip.spec.audio_features.index("voicing")] > 0.5))
    if voiced < MIN_VOICED:
        return (f"No voice was heard ({voiced:.0%} of the sound track is voiced): the score rests mostly on the "
                "words and the face.")
    return None


class SentimentPipeline:
    def __init__(self, weights: LoadedWeights, max_duration_s: float = 60.0, max_file_bytes: int = MAX_FILE_BYTES,
                 cache_size: int = 16, max_transcript_chars: int = 2000, max_windows: int = MAX_WINDOWS,
                 max_text_windows: int = MAX_TEXT_WINDOWS, asr_model: str | None = None):
        self.weights = weights
        self.asr, self.asr_status = speech_recognizer(asr_model)   # asr None: transcripts must be typed
        self.max_duration_s = max_duration_s
        self.max_file_bytes = max_file_bytes
        self.max_transcript_chars = max_transcript_chars
        self.max_windows = max_windows
        self.max_text_windows = max_text_windows
        self.extractions = 0                     # feature extractions actually run (cache misses)
        self._features: LRUCache[ClipFeatures] = LRUCache(cache_size)
        self._tokenizer_lock = threading.Lock()  # fast tokenizers fail ("Already borrowed") when shared across threads

    @property
    def label_range(self) -> float:
        return float(self.weights.model.config.label_range)

    @property
    def text_window(self) -> int:
        """Tokens per text-encoder window: the length the weights were trained with (config.max_text_len)."""
        return int(self.weights.model.config.max_text_len)

    def spec_for(self, fps) -> FeatureSpec:
        """The extractor settings for a requested frame rate (None or empty: the weights' own)."""
        spec = self.weights.spec
        if fps is None or (isinstance(fps, str) and not fps.strip()):
            return spec
        x = _number(fps)
        if x is None or not FPS_RANGE[0] <= x <= FPS_RANGE[1]:
            raise InputError(f"Frames per second must be a number between {FPS_RANGE[0]} and {FPS_RANGE[1]}; got "
                             f"{shown(fps)}. Leave it empty for the rate the weights were trained at "
                             f"({spec.video_fps:g}).")
        return spec if x == spec.video_fps else dataclasses.replace(spec, video_fps=x)

    @staticmethod
    def check_window(window) -> float:
        """The timeline window in seconds; 0 (or empty) = no timeline."""
        if window is None or (isinstance(window, str) and not window.strip()):
            return 0.0
        x = _number(window)
        if x is None:
            raise InputError(f"The timeline window must be 0 (off) or a number of seconds (at least "
                             f"{MIN_WINDOW_S:g}); got {shown(window)}.")
        if x != 0 and x < MIN_WINDOW_S:
            raise InputError(f"The timeline window must be 0 (off) or at least {MIN_WINDOW_S:g} s; got "
                             f"{shown(window)}. Shorter windows hold too little voice and face to score.")
        return x

    # ---- features ------------------------------------------------------------------------------

    def features(self, video: str | os.PathLike, fps: float | None = None) -> tuple[ClipFeatures, bool]:
        """(features, whether they came from the cache). Raises InputError / preprocessing.MediaError."""
        path = self._check_video(video)
        spec = self.spec_for(fps)
        key = (file_sha256(path), json.dumps(spec.to_dict(), sort_keys=True), self.max_duration_s)
        if (clip := self._features.get(key)) is not None:
            return clip, True
        with _extraction_slot:   # not under the cache's lock: hits for other clips are answered meanwhile
            clip = extract_clip(path, spec, max_duration_s=self.max_duration_s)
            self.extractions += 1
        self._features.put(key, clip)
        return clip, False

    def _check_video(self, video) -> Path:
        if video is None or (isinstance(video, str) and not video.strip()):
            raise InputError("No video: upload a clip or record one with the webcam first.")
        path = Path(video)
        if path.is_file() and (size := path.stat().st_size) > self.max_file_bytes:
            raise InputError(f"'{path.name}' is {size_over(size, self.max_file_bytes)}; the limit is "
                             f"{megabytes(self.max_file_bytes)}. Trim or compress the clip and upload it again.")
        return path

    def _check_transcript(self, transcript: str | None) -> str:
        """The typed transcript with whitespace collapsed; "" when the box is empty."""
        text = " ".join((transcript or "").split())
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise InputError(f"The transcript contains characters that are not text (an unpaired surrogate at "
                             f"position {err.start}). Type or paste it again as plain text.") from None
        if len(text) > self.max_transcript_chars:
            raise InputError(f"The transcript has {len(text)} characters; the limit is {self.max_transcript_chars}. "
                             "Shorten it to what is said in the clip.")
        with self._tokenizer_lock:
            windows = count_windows(text, self.weights.tokenizer, self.text_window)
        if windows > self.max_text_windows:
            raise InputError(f"The transcript makes {windows} windows of the text encoder's {self.text_window} tokens; "
                             f"the limit is {self.max_text_windows}. Symbols, numbers and rare words take a token each "
                             "or more: shorten it to the words said in the clip.")
        return text

    def _transcript(self, typed: str, clip: ClipFeatures, need_times: bool,
                    timings: dict) -> tuple[str, str, list[TimedWord] | None, list[str]]:
        """(text, "typed" / "asr", timed words or None, notices). An empty box is filled by speech
        recognition; a typed transcript is timed by it only when the timeline needs word times."""
        shared = "Timeline windows share the full transcript: "
        if typed and not (need_times and self.asr):
            return typed, "typed", None, [shared + self.asr_status] if need_times else []
        if self.asr is None:
            raise InputError(f"The transcript is empty: type what the speaker says in the clip. {self.asr_status}")
        t0 = time.perf_counter()
        try:
            heard = self.asr.transcribe(clip.waveform, clip.sample_rate)
        except SpeechRecognitionError as err:
            if not typed:
                raise
            return typed, "typed", None, [shared + str(err)]
        finally:
            timings["asr"] = time.perf_counter() - t0
        if typed:
            words = align_words(typed, heard.words)
            return typed, "typed", words or None, [] if words else [shared + "no speech was recognised to time its words."]
        if not heard.has_speech:
            raise InputError("No speech was found in the clip (only silence, music or other sounds), so there are no "
                             "words to rate. If someone does speak, type what they say in the transcript box.")
        return heard.text, "asr", heard.words, [f"Transcript by speech recognition ({heard.model}): correct it in the "
                                                "box and analyse again if it misheard."]

    # ---- model ---------------------------------------------------------------------------------

    def predict(self, video: str | os.PathLike | None, transcript: str | None, fps: float | None = None,
                timeline_window_s: float = 0.0, explain: bool = True) -> Prediction:
        """``explain``: also attribute the score to the transcript's words (mclmcf.serving.explain, the weights'
        default method)."""
        t_start = time.perf_counter()
        typed = self._check_transcript(transcript)
        window_s = self.check_window(timeline_window_s)
        clip, cached = self.features(video, fps)
        self._check_timeline_fits(clip, window_s)
        timings = {} if cached else {k: v for k, v in clip.timings.items() if k != "total"}
        wants_timeline = bool(window_s) and clip.duration_s >= 2 * window_s
        text, source, words, text_notices = self._transcript(typed, clip, wants_timeline, timings)
        with _timed(timings, "model"):
            (score, *ablated), full, states = self._score_with_ablations(text, clip)
            windows = len(states)
        timeline = attributions = None
        if wants_timeline:
            with _timed(timings, "timeline"):
                timeline = self._timeline(text, words, clip, window_s)
        if explain:
            with _timed(timings, "explain"):
                attributions = self.explain_words(text, clip.audio, clip.vision, states, score)
        timings["total"] = time.perf_counter() - t_start

        sentiment_class, polarity = sentiment_labels(score, self.label_range)
        return Prediction(
            score=score, label_range=self.label_range, sentiment_class=sentiment_class, polarity=polarity,
            contributions={m: score - float(s) for m, s in zip(MODALITIES, ablated)},
            tcf_images={p: x[0].float().cpu().numpy() for p, x in full.tcf_images.items()},
            tcf_feature_maps={p: [m[0].float().cpu().numpy() for m in maps] for p, maps in full.tcf_feature_maps.items()},
            clip=clip, timings=timings, features_cached=cached, transcript=text, transcript_source=source,
            text_windows=windows, words=words, timeline=timeline,
            notices=self._notices(clip, text_notices, windows, text, source), attributions=attributions,
            voice=summarise_voice(clip, len(text.split()), words), weights=self.weights)

    def _check_timeline_fits(self, clip: ClipFeatures, window_s: float) -> None:
        """InputError when ``window_s`` cuts the clip into more than ``max_windows`` timeline windows."""
        n_windows = len(timeline_windows(clip.duration_s, window_s)) if window_s else 0
        if n_windows > self.max_windows:
            fits = max(MIN_WINDOW_S, math.floor(clip.duration_s / self.max_windows))
            while len(timeline_windows(clip.duration_s, fits)) > self.max_windows:
                fits += 1
            raise InputError(f"A {window_s:g} s timeline window cuts this {clip.duration_s:.1f} s clip into "
                             f"{n_windows} windows; the limit is {self.max_windows}. Use a window of at least {fits:g} s.")

    def _notices(self, clip: ClipFeatures, text_notices: list[str], text_windows: int, text: str = "",
                 source: str = "typed") -> list[str]:
        """What the visitor is told beside the score: about the weights, the transcript, the clip, its sound, its face."""
        notices = list(self.weights.notices) + text_notices
        if (foreign := untrusted_notice(text, self.weights.model.config.text_encoder, source)) is not None:
            notices.append(foreign)
        if text_windows > 1:
            notices.append(f"The transcript is longer than the text encoder's {self.text_window} tokens: it was "
                           f"scored in {text_windows} windows, combined by a token-weighted mean.")
        notices += clip.notices
        if (sound := sound_notice(clip)) is not None:
            notices.append(sound)
        if clip.face_fraction < 0.5:
            notices.append(f"A face was found in only {clip.face_fraction:.0%} of the sampled frames.")
        return notices

    def explain_words(self, text: str, audio: np.ndarray, vision: np.ndarray,
                      states: list[torch.Tensor] | None = None, score: float | None = None) -> WordAttributions:
        """The score of (text, acoustic features, face features) over the text's words, by the weights' default
        method (mclmcf.serving.explain): the page, the API and live mode. ``states`` (the text's encoder windows'
        last-layer token states) and ``score`` (the item's score): where the request has them."""
        return attribute_words(self.weights.model, self.weights.tokenizer, text, audio, vision,
                               max_length=self.text_window, tokenizer_lock=self._tokenizer_lock, states=states,
                               score=score)

    def score(self, text: str, audio: np.ndarray, vision: np.ndarray) -> float:
        """The score of one (transcript, acoustic features, face features) item, nothing else (live mode)."""
        return float(self._score_items([(text, audio, vision)])[0])

    def _score_items(self, items: list[tuple[str, np.ndarray, np.ndarray]]) -> np.ndarray:
        """Scores (N,) of (text, audio, vision) items (mclmcf.serving.scoring.score_items)."""
        return score_items(self.weights.model, self.weights.tokenizer, items, self.text_window, self._tokenizer_lock)

    @torch.no_grad()
    def _score_with_ablations(self, text: str, clip: ClipFeatures):
        """([score, score with text, audio, vision neutralised], output with the TCF maps, the transcript's windows'
        last-layer token states). The
        transcript's windows pass the encoder once; their vectors are scored with the clip's voice and face, with a
        neutral voice and with a neutral face, and the empty transcript's (cached) vector with the clip's, all in one
        head pass. The maps come from a forward of the first window's vector with the clip's voice and face."""
        model = self.weights.model
        vectors = text_vectors(model, self.weights.tokenizer, [text, ""], self.text_window, self._tokenizer_lock,
                               keep_states=True)
        windows = vectors.windows(0)
        h_text, h_empty = vectors.vectors[:windows], vectors.vectors[windows:]
        av = audio_visual_batch(model, [(clip.audio, clip.vision), (neutral_frames(model.audio_norm, len(clip.audio)),
                                                                    neutral_frames(model.vision_norm, len(clip.vision)))])
        (real_a, neutral_a), (real_v, neutral_v) = av["a"].split(1), av["v"].split(1)
        rows = [(h_text, real_a, real_v), (h_empty, real_a, real_v), (h_text, neutral_a, real_v),
                (h_text, real_a, neutral_v)]
        per_window = score_vectors(model, torch.cat([t for t, _, _ in rows]),
                                   {"a": torch.cat([a.expand(len(t), -1) for t, a, _ in rows]),
                                    "v": torch.cat([v.expand(len(t), -1) for t, _, v in rows])})
        weights = vectors.weights[:windows]
        score, nothing = float(weights @ per_window[:windows]), float(per_window[windows])
        neutral_voice, neutral_face = (float(weights @ part) for part in np.split(per_window[windows + 1:], 2))
        la, lv = (torch.tensor([len(x)], device=h_text.device) for x in (clip.audio, clip.vision))
        full = model(None, None, torch.as_tensor(clip.audio[None], device=h_text.device), la,
                     torch.as_tensor(clip.vision[None], device=h_text.device), lv, text_vector=h_text[:1],
                     return_maps=True)
        return [score, nothing, neutral_voice, neutral_face], full, vectors.states[:windows]

    def _timeline(self, text: str, words: list[TimedWord] | None, clip: ClipFeatures, window_s: float) -> list[Segment]:
        spans = timeline_windows(clip.duration_s, window_s)
        fps_a = clip.spec.audio_fps
        audio_parts, vision_parts = [], []
        for s, e in spans:
            audio_parts.append(clip.audio[int(s * fps_a):max(int(s * fps_a) + 1, int(e * fps_a))])
            idx = np.flatnonzero((clip.frame_times >= s) & (clip.frame_times < e))
            vision_parts.append(clip.vision[idx] if len(idx) else clip.vision[-1:])
        last = len(spans) - 1   # the last window also takes a word that ends at the clip's end
        texts = ([words_in_span(words, s, e if i < last else np.inf) for i, (s, e) in enumerate(spans)] if words
                 else [text] * len(spans))
        scores = self._score_items(list(zip(texts, audio_parts, vision_parts)))
        return [Segment(round(float(s), 3), round(float(e), 3), float(x), t) for (s, e), x, t in zip(spans, scores, texts)]


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str):
    """Record the block's wall time in seconds as ``timings[stage]``."""
    t0 = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - t0
