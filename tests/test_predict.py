"""python -m mclmcf.predict: batch scores through the app's pipeline, either labels layout, resume, and
speech recognition for clips without a transcript."""

from __future__ import annotations

import csv
import shutil

import pytest

from mclmcf.serving import batch as predict
from mclmcf.serving.pipeline import SentimentPipeline
from preprocessing.labels import read_labels


def read(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run(clips, labels, out, *extra):
    return predict.main(["--clips", str(clips), "--labels", str(labels), "--out", str(out), *extra])


def test_mmsa_folder_scored_like_the_app(mmsa_raw, checkpoint, loaded, tmp_path):
    raw, labels = mmsa_raw
    out = tmp_path / "scores.csv"
    summary = run(raw, labels, out, "--weights", str(checkpoint), "--workers", "2")
    assert summary == {"clips": 6, "scored": 5, "errors": 1, "resumed": 0, "skipped_rows": 0}
    rows = read(out)
    assert list(rows[0]) == list(predict.COLUMNS)
    assert [r["id"] for r in rows] == ["video_0001$_$0001", "video_0001$_$0002", "video_0002$_$0001",
                                       "video_0002$_$0002", "video_0003$_$0001", "video_0003$_$0002"]
    assert rows[-1]["error"].startswith("FileNotFoundError") and rows[-1]["score"] == ""
    texts = {r.id: r.transcript for r in read_labels(labels).rows}
    app = SentimentPipeline(loaded)          # what the app answers for the same clip and transcript
    for r in rows[:5]:
        pred = app.predict(raw / r["clip"], texts[r["id"]])
        assert float(r["score"]) == pytest.approx(pred.score, abs=1e-4)
        assert (r["sentiment_class"], r["polarity"]) == (pred.sentiment_class, pred.polarity)
        assert float(r["face_fraction"]) == pytest.approx(pred.clip.face_fraction, abs=1e-3)
        assert float(r["duration_s"]) == pytest.approx(pred.clip.duration_s, abs=1e-3)
        assert r["transcript_source"] == "typed" and not r["error"]
    assert [float(r["label"]) for r in rows] == [0.8, -0.6, 0.0, -0.4, 1.0, 0.2]


def test_resume_scores_only_what_is_missing(mmsa_raw, checkpoint, tmp_path):
    raw, labels = mmsa_raw
    out = tmp_path / "scores.csv"
    run(raw, labels, out, "--weights", str(checkpoint))
    first = read(out)
    with pytest.raises(SystemExit, match="exists; pass --resume"):
        run(raw, labels, out, "--weights", str(checkpoint))
    # as a kill leaves it: two rows finished, the third cut off mid-line
    text = out.read_text().splitlines()
    out.write_text("\n".join(text[:3]) + "\n" + text[3][:25])
    summary = run(raw, labels, out, "--weights", str(checkpoint), "--resume")
    assert summary["resumed"] == 2 and summary["scored"] == 5
    assert predict._worker["registry"].get().extractions == 3     # the 3 clips not scored before (1 is missing)
    assert read(out) == first


def test_clips_without_transcript_use_speech_recognition_or_are_refused(make_clip, checkpoint, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(make_clip("spoken.mp4", duration_s=4.0), clips / "a.mp4")   # espeak-ng speaks a sentence
    labels = tmp_path / "labels.csv"
    labels.write_text("clip\na.mp4\n")
    with pytest.raises(SystemExit, match="no transcript and no speech recognition is available"):
        run(clips, labels, tmp_path / "off.csv", "--weights", str(checkpoint), "--asr-model", "none")
    run(clips, labels, tmp_path / "scores.csv", "--weights", str(checkpoint))   # the packaged Whisper tiny.en
    (row,) = read(tmp_path / "scores.csv")
    assert row["transcript_source"] == "asr" and row["score"] and not row["error"]


def test_unusable_weights_stop_before_any_clip(mmsa_raw, tmp_path):
    raw, labels = mmsa_raw
    with pytest.raises(SystemExit, match="holds no config.json"):
        run(raw, labels, tmp_path / "scores.csv", "--weights", str(tmp_path))
