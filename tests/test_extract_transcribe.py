"""preprocessing.extract --transcribe: raw clips without transcripts become a dataset."""

from __future__ import annotations

import csv
import shutil

import pytest

from preprocessing.dataformat import load_safe
from preprocessing.extract import main
from preprocessing.words import word_error_rate

SPOKEN = "I really enjoyed this movie, it was great."


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_transcribe_fills_missing_transcripts_and_records_their_source(make_clip, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(make_clip("spoken.mp4", duration_s=3.5, text=SPOKEN), clips / "spoken.mp4")
    shutil.copy(make_clip("talk.mp4"), clips / "typed.mp4")
    shutil.copy(make_clip("tone.mp4", audio="tone"), clips / "tone.mp4")
    labels = tmp_path / "labels.csv"
    labels.write_text("clip,transcript,label,split\n"
                      "spoken.mp4,,2.0,train\n"
                      "typed.mp4,That was a waste of time,-2.0,train\n"
                      "tone.mp4,,0.0,test\n")
    out = tmp_path / "out"
    args = ["--clips", str(clips), "--labels", str(labels), "--out", str(out), "--transcribe"]
    summary = main(args)
    assert summary["failed"] == 1 and summary["splits"] == {"train": 2}
    with open(out / "failures.csv", newline="") as f:
        assert [(r["clip"], r["error"]) for r in csv.DictReader(f)] == [("tone.mp4", "NoSpeechError")]
    data, _ = load_safe(out / "safe")
    train = data["train"]
    assert list(train["transcript_source"]) == ["asr", "typed"]
    assert word_error_rate(SPOKEN, train["raw_text"][0]) <= 0.25, train["raw_text"][0]
    assert train["raw_text"][1] == "That was a waste of time"

    saved = {p: p.stat().st_mtime_ns for p in (out / "cache").glob("*.transcript.json")}
    assert len(saved) == 2                               # the spoken clip and the tone (no speech)
    assert main(args + ["--resume"])["splits"] == {"train": 2}
    assert {p: p.stat().st_mtime_ns for p in (out / "cache").glob("*.transcript.json")} == saved

    main(["--clips", str(clips), "--labels", str(labels), "--out", str(tmp_path / "plain")])
    plain, _ = load_safe(tmp_path / "plain" / "safe")
    assert list(plain["train"]["transcript_source"]) == ["none", "typed"] and plain["train"]["raw_text"][0] == ""
