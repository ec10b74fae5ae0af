"""python -m mclmcf.predict: batch scores through the app's pipeline, clips as arguments or either labels layout,
resume, speech recognition for clips without a transcript, and a console without mediapipe's native lines."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mclmcf.serving import batch as predict
from mclmcf.serving.pipeline import SentimentPipeline
from preprocessing.labels import read_labels

ROOT = Path(__file__).resolve().parent.parent


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


def test_clips_as_arguments_print_one_line_each_as_the_app_scores_them(checkpoint, loaded, tmp_path, capsys):
    """`python -m mclmcf.predict examples/positive.mp4 examples/negative.mp4 --transcript ... --transcript ...`:
    one printed line per clip with the app's score and the transcript read; --out writes the same rows."""
    examples = json.loads((ROOT / "examples" / "examples.json").read_text())
    clips = [str(ROOT / "examples" / name) for name, _ in examples]
    texts = [text for _, text in examples]
    args = [*clips, *(a for t in texts for a in ("--transcript", t)), "--weights", str(checkpoint)]
    summary = predict.main([*args, "--out", str(tmp_path / "scores.csv")])
    assert summary == {"clips": 2, "scored": 2, "errors": 0, "resumed": 0, "skipped_rows": 0}
    lines = capsys.readouterr().out.splitlines()
    app = SentimentPipeline(loaded)
    for clip, text, row in zip(clips, texts, read(tmp_path / "scores.csv")):
        pred = app.predict(clip, text)
        assert float(row["score"]) == pytest.approx(pred.score, abs=1e-4) and row["transcript"] == text
        assert f'{clip}: {pred.score:+.2f} {pred.sentiment_class} (typed: "{text}")' in lines
    with pytest.raises(SystemExit, match="2 clip.s. but 1 --transcript"):
        predict.main([*clips, "--transcript", texts[0], "--weights", str(checkpoint)])
    with pytest.raises(SystemExit):         # either clips as arguments or a labels file
        predict.main([clips[0], "--clips", "examples", "--labels", "x.csv", "--out", "y.csv"])


def test_a_clip_without_transcript_is_transcribed_and_a_french_one_gets_the_notice(checkpoint, make_clip, capsys):
    clip = str(make_clip("spoken.mp4", duration_s=4.0))
    predict.main([clip, clip, "--transcript", "", "--transcript", "Ce film est nul, une perte de temps.",
                  "--weights", str(checkpoint)])
    heard, heard_note, french, french_note = capsys.readouterr().out.splitlines()
    assert heard.startswith(f"{clip}: ") and "(asr: " in heard and "enjoyed" in heard.lower()
    assert heard_note.startswith("  note: Transcript by speech recognition")
    assert french.endswith('(typed: "Ce film est nul, une perte de temps.")')
    assert french_note.startswith("  note: The transcript does not look like English (its common words are French)")


NATIVE_NOISE = ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires")


def test_the_console_shows_no_native_log_lines(checkpoint, make_clip):
    """mediapipe's native lines reach the console of a plain run of the batch code, not `python -m mclmcf.predict`."""
    clip = str(make_clip("talk.mp4"))
    args = [clip, "--transcript", "A fine film.", "--weights", str(checkpoint)]
    plain = subprocess.run([sys.executable, "-c", f"from mclmcf.serving.batch import main; main({args!r})"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and any(noise in plain.stderr for noise in NATIVE_NOISE), plain.stderr
    cli = subprocess.run([sys.executable, "-m", "mclmcf.predict", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 0 and cli.stdout.startswith(f"{clip}: "), cli.stdout + cli.stderr
    assert not any(noise in cli.stderr for noise in NATIVE_NOISE), cli.stderr
