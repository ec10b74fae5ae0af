"""The extraction CLI end to end on a tiny folder: dataset formats, failure report, resume."""

from __future__ import annotations

import csv
import json
import pickle
import shutil

import numpy as np
import pytest

from preprocessing.dataformat import load_safe
from preprocessing import FeatureSpec
from preprocessing.extract import main


@pytest.fixture
def folder(make_clip, tmp_path):
    clips = tmp_path / "clips"
    (clips / "sub").mkdir(parents=True)
    shutil.copy(make_clip("clip.mp4", audio="tone"), clips / "happy.mp4")
    shutil.copy(make_clip("talk.mp4", mouth="talk", motion="sway", audio="speech"), clips / "sub" / "sad.mp4")
    shutil.copy(make_clip("exit.webm", motion="exit", audio="tone"), clips / "half.webm")
    (clips / "broken.mkv").write_bytes(b"not a video at all" * 50)
    labels = tmp_path / "labels.csv"
    labels.write_text("clip,transcript,label,split\n"
                      "happy.mp4,I loved every minute of it,2.5,train\n"
                      "sub/sad.mp4,That was a waste of time,-2.0,train\n"
                      "broken.mkv,whatever,0.0,valid\n"
                      "half.webm,It was okay I guess,0.4,test\n")
    return clips, labels, tmp_path / "out"


def run(clips, labels, out, *extra):
    return main(["--clips", str(clips), "--labels", str(labels), "--out", str(out), *extra])


def test_extract_end_to_end(folder):
    clips, labels, out = folder
    summary = run(clips, labels, out, "--workers", "2")
    assert summary["extracted"] == 3 and summary["failed"] == 1 and summary["splits"] == {"train": 2, "test": 1}

    with open(out / "failures.csv", newline="") as f:
        failures = list(csv.DictReader(f))
    assert [r["clip"] for r in failures] == ["broken.mkv"]
    assert failures[0]["error"] == "UnreadableMediaError" and "broken.mkv" in failures[0]["message"]

    with open(out / "dataset.pkl", "rb") as f:
        data = pickle.load(f)
    train, test = data["train"], data["test"]
    assert list(train["id"]) == ["happy.mp4", "sub/sad.mp4"] and train["raw_text"][0].startswith("I loved")
    assert train["text_bert"].shape == (2, 3, 50) and train["text_bert"].dtype == np.int64
    assert train["audio"].shape == (2, 101, 48) and train["audio"].dtype == np.float32
    assert train["vision"].shape == (2, 20, 23) and test["vision"].shape == (1, 20, 23)   # spec version 2
    np.testing.assert_array_equal(train["regression_labels"], np.array([2.5, -2.0], np.float32))
    np.testing.assert_array_equal(train["audio_lengths"], [101, 101])
    assert 0.3 <= test["face_fraction"][0] <= 0.7 and not test["face_mask"][0, -5:].any()
    assert (test["vision"][0, ~test["face_mask"][0]] == 0).all()
    expressions = train["vision"][:, :, 16:][train["face_mask"]]
    assert np.allclose(expressions.sum(1), 1, atol=1e-5)

    safe, info = load_safe(out / "safe")
    np.testing.assert_array_equal(safe["train"]["audio"], train["audio"])
    assert list(safe["test"]["raw_text"]) == ["It was okay I guess"]
    assert FeatureSpec.matching(info["feature_spec"], what="dataset") == FeatureSpec()
    assert json.loads((out / "feature_spec.json").read_text()) == info["feature_spec"]


def test_spec_version_1_dataset(folder):
    """--spec-version 1: the geometry-only features older models were trained on."""
    clips, labels, out = folder
    run(clips, labels, out, "--spec-version", "1")
    safe, info = load_safe(out / "safe")
    assert safe["train"]["vision"].shape == (2, 20, 16)
    assert FeatureSpec.matching(info["feature_spec"], what="dataset") == FeatureSpec.of_version(1)
    with pytest.raises(SystemExit):
        run(clips, labels, out, "--spec-version", "99")


def test_resume_skips_done_clips(folder):
    clips, labels, out = folder
    run(clips, labels, out)
    cached = {p.name: p.stat().st_mtime_ns for p in (out / "cache").glob("*.npz")}
    assert len(cached) == 3
    again = run(clips, labels, out, "--resume")
    assert again["cached"] == 3 and again["extracted"] == 0 and again["failed"] == 1
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cache").glob("*.npz")} == cached
    # a changed file is a different cache entry: re-extracted even with --resume
    shutil.copy(clips / "happy.mp4", clips / "sub" / "sad.mp4")
    third = run(clips, labels, out, "--resume")
    assert third["cached"] == 2 and third["extracted"] == 1


def test_mmsa_raw_layout(mmsa_raw, tmp_path):
    """MMSA's Raw/<video_id>/<clip_id>.mp4 + label.csv: detected from the header, per-modality labels kept."""
    raw, labels = mmsa_raw
    out = tmp_path / "out"
    summary = run(raw, labels, out)
    assert summary["splits"] == {"train": 3, "valid": 1, "test": 1} and summary["failed"] == 1

    with open(out / "failures.csv", newline="") as f:
        failures = list(csv.DictReader(f))
    assert [(r["row"], r["clip"], r["error"]) for r in failures] == [("7", "video_0003/0002.mp4", "FileNotFoundError")]

    safe, info = load_safe(out / "safe")
    train = safe["train"]
    assert list(train["id"]) == ["video_0001$_$0001", "video_0001$_$0002", "video_0002$_$0001"]
    assert list(train["raw_text"]) == ["I loved every minute of it", "That was a waste of time", "It was okay I guess"]
    np.testing.assert_allclose(train["regression_labels"], [0.8, -0.6, 0.0])
    np.testing.assert_allclose(train["regression_labels_T"], [1.0, -0.8, 0.2])
    np.testing.assert_allclose(train["regression_labels_A"], [0.6, -0.2, -0.2])
    np.testing.assert_allclose(safe["test"]["regression_labels_V"], [0.6])
    assert list(safe["valid"]["annotation"]) == ["Negative"] and info["labels_layout"] == "mmsa"
    # the video clip is the same file as in the project layout: same features
    assert train["audio"].shape[2] == 48 and train["vision"].shape[2] == 23


def test_mmsa_without_modality_labels_drops_them(mmsa_raw, tmp_path):
    """CMU-MOSI's label.csv has the label_T/A/V columns but leaves them empty."""
    raw, labels = mmsa_raw
    rows = [line.split(",") for line in labels.read_text().splitlines()]
    mosi = tmp_path / "label.csv"
    mosi.write_text("\n".join([",".join(rows[0])] + [",".join(r[:4] + ["", "", ""] + r[7:]) for r in rows[1:6]]) + "\n")
    run(raw, mosi, tmp_path / "out")
    safe, _ = load_safe(tmp_path / "out" / "safe")
    assert "regression_labels" in safe["train"] and not any(k.startswith("regression_labels_") for k in safe["train"])
