"""labels.csv problems are refused at extraction time, before any clip is decoded, each with its file and row."""

from __future__ import annotations

import pytest

from preprocessing.extract import main

HEADER = "clip,transcript,label,split\n"


def extract(tmp_path, text: str, encoding: str = "utf-8"):
    labels = tmp_path / "labels.csv"
    labels.write_bytes(text.encode(encoding))
    return main(["--clips", str(tmp_path), "--labels", str(labels), "--out", str(tmp_path / "out")])


@pytest.mark.parametrize("row, message", [
    ("a.mp4,hello,positive,train", r"labels.csv:3: label 'positive' is not a number"),
    ("a.mp4,hello,,train", r"labels.csv:3: label is empty"),
    ("a.mp4,hello,nan,train", r"labels.csv:3: label 'nan' is not a finite number"),
    ("a.mp4,hello,inf,train", r"labels.csv:3: label 'inf' is not a finite number"),
    ("a.mp4,hello,1e9,train", r"labels.csv:3: label 1e\+09 is outside \[-3, 3\]"),
    ("a.mp4,hello,0.5", r"labels.csv:3: 3 field\(s\), the header has 4"),
    ("a.mp4,hello,0.5,holdout", r"labels.csv:3: split 'holdout' is not one of train / valid / test"),
])
def test_bad_row_names_file_and_row(tmp_path, row, message):
    with pytest.raises(SystemExit, match=message):
        extract(tmp_path, HEADER + "b.mp4,fine,1.0,train\n" + row + "\n")
    assert not (tmp_path / "out" / "cache").exists()      # refused before any clip was touched


def test_every_problem_is_listed_at_once(tmp_path):
    with pytest.raises(SystemExit) as err:
        extract(tmp_path, HEADER + "a.mp4,x,oops,train\nb.mp4,y,nan,test\n")
    assert "2 problem(s)" in str(err.value) and "labels.csv:2" in str(err.value) and "labels.csv:3" in str(err.value)


def test_utf8_byte_order_mark_is_not_part_of_the_header(tmp_path, make_clip):
    import shutil
    shutil.copy(make_clip("talk.mp4"), tmp_path / "a.mp4")
    summary = extract(tmp_path, HEADER + "a.mp4,hello there,1.0,train\n", encoding="utf-8-sig")
    assert summary["splits"] == {"train": 1}


def test_clip_in_two_splits_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match=r"labels.csv:3: clip a.mp4 is in split 'test' and also in 'train' \(row 2\)"):
        extract(tmp_path, HEADER + "a.mp4,hello,1.0,train\na.mp4,hello,1.0,test\n")


def test_clip_twice_in_one_split_is_a_warning(tmp_path, make_clip, capsys):
    import csv
    import shutil
    shutil.copy(make_clip("talk.mp4"), tmp_path / "a.mp4")
    summary = extract(tmp_path, HEADER + "a.mp4,hello,1.0,train\na.mp4,hello again,1.0,train\n")
    assert summary["splits"] == {"train": 1}
    assert "labels.csv:3: clip a.mp4 repeats row 2" in capsys.readouterr().err
    with open(tmp_path / "out" / "failures.csv", newline="") as f:
        assert [(r["row"], r["error"]) for r in csv.DictReader(f)] == [("3", "DuplicateClip")]


def test_neither_layout(tmp_path):
    with pytest.raises(SystemExit, match=r"neither this project's layout .* nor MMSA's"):
        extract(tmp_path, "file,sentence,score\na.mp4,hi,1\n")
