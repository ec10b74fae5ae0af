"""Why this score: word attributions by Integrated Gradients, and a one-line summary of the voice.

Word attribution (Sundararajan et al. 2017, "Axiomatic Attribution for Deep Networks"). F is the
model's full multimodal score with the clip's voice and face held fixed, as a function of the text
encoder's input word embeddings x (position and token-type embeddings are added inside the encoder,
as in the forward pass). Baseline x': every transcript token's word embedding replaced by the
[PAD] token's; [CLS], [SEP] and the attention mask are kept, so the baseline is "a sentence of this
length with no words in it". Token i gets

    IG_i = (x_i - x'_i) . integral_0^1 dF(x' + a (x - x')) / dx_i da,

the integral by the midpoint rule with ``steps`` points, all in one batched forward and backward.
Completeness: sum_i IG_i = F(x) - F(x') up to the quadrature error, which is returned
(``WordAttributions.completeness_error``) and tested. F is steep in places along the path (the score
can swing by 2 within a tenth of it) and has ReLU kinks, so no rule converges fast: at 32 points the
midpoint rule's error stayed within 0.065 score units on our sentences with the demo weights (0.035 with
their predecessor, where Gauss-Legendre's stayed within 0.04; at 16 points both reached 0.36-0.42).
Baselines of [MASK] or [UNK] embeddings gave larger errors.
Word pieces are summed into the transcript's whitespace-separated words (punctuation stays with its
word), through the tokenizer's character offsets.

Long transcripts are scored in encoder windows, the score being the windows' token-weighted mean
(pipeline._score); each window is attributed on its own and its attributions weighted the same way,
so the words' sum still equals score - baseline score of the whole transcript.

The attributions explain this model's score, not what the speaker felt or meant.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import numpy as np
import torch

from preprocessing import ClipFeatures
from preprocessing.audio import VOICED
from preprocessing.text import DEFAULT_MAX_LENGTH, tokenize_windows
from preprocessing.words import TimedWord

from mclmcf.model import MCLMCF

STEPS = 32              # quadrature points: completeness error and cost in benchmarks/bench_explain.py


@dataclass
class WordAttribution:
    word: str
    attribution: float                 # score units: how much this word moved the score from the baseline's


@dataclass
class WordAttributions:
    words: list[WordAttribution]       # the transcript's words, in order
    score: float                       # F(x): the model's score for the transcript
    baseline_score: float              # F(x'): every word replaced by [PAD]

    @property
    def completeness_error(self) -> float:
        return self.score - self.baseline_score - sum(w.attribution for w in self.words)


def _text_score(model: MCLMCF, embeds: torch.Tensor, mask: torch.Tensor, types: torch.Tensor,
                h_av: dict) -> torch.Tensor:
    """The model's forward from the word embeddings on, audio and visual vectors given: (B, L, Dt) -> (B,)."""
    h = {"t": model.encode_text(mask, token_type_ids=types, inputs_embeds=embeds),
         **{m: x.expand(len(embeds), -1) for m, x in h_av.items()}}
    return model.head(model.fuse(h, model.expansions(h))).squeeze(-1)


@dataclass
class EmbeddingPath:
    """The two ends of the attribution path, per encoder window (module docstring): the transcript's word
    embeddings x and the baseline x', in which every transcript token's embedding is [PAD]'s."""
    ids: torch.Tensor          # (windows, width) token ids, padding beyond the longest window dropped
    mask: torch.Tensor         # (windows, width)
    types: torch.Tensor        # (windows, width)
    spans: np.ndarray          # (windows, width, 2) character offsets into the transcript
    content: torch.Tensor      # (windows, width) transcript tokens, not [CLS]/[SEP]/[PAD]
    words: torch.Tensor        # (windows, width, Dt) x
    blank: torch.Tensor        # (windows, width, Dt) x'


@torch.no_grad()
def embedding_path(model: MCLMCF, tokenizer, text: str, max_length: int = DEFAULT_MAX_LENGTH,
                   tokenizer_lock=contextlib.nullcontext()) -> EmbeddingPath:
    dev = next(model.parameters()).device
    with tokenizer_lock:
        enc = tokenize_windows(text, tokenizer, max_length, offsets=True)
    width = max(int(enc["attention_mask"].sum(1).max()), 2)        # padding does not change [CLS]: drop it
    ids, mask, types = (torch.as_tensor(enc[k][:, :width], device=dev)
                        for k in ("input_ids", "attention_mask", "token_type_ids"))
    spans = enc["offset_mapping"][:, :width]
    content = torch.as_tensor(spans[..., 1] > spans[..., 0], device=dev)
    embed = model.text_encoder.get_input_embeddings()
    words = embed(ids)
    return EmbeddingPath(ids, mask, types, spans, content, words,
                         torch.where(content[..., None], embed.weight[tokenizer.pad_token_id], words))


def attribute_words(model: MCLMCF, tokenizer, text: str, audio: np.ndarray, vision: np.ndarray,
                    steps: int = STEPS, max_length: int = DEFAULT_MAX_LENGTH,
                    tokenizer_lock=contextlib.nullcontext()) -> WordAttributions:
    """Integrated Gradients of the score over the transcript's words (module docstring). ``audio`` and
    ``vision``: the clip's (frames, features) arrays, held fixed."""
    dev = next(model.parameters()).device
    p = embedding_path(model, tokenizer, text, max_length, tokenizer_lock)
    n_tokens = np.maximum(p.mask.sum(1).cpu().numpy() - 2, 1)                # as pipeline._score weights windows
    window_weight = n_tokens / n_tokens.sum()

    # the midpoints of ``steps`` equal intervals, then the baseline and the input themselves (for F(x'), F(x))
    alphas = torch.tensor(np.r_[(np.arange(steps) + 0.5) / steps, 0.0, 1.0], dtype=torch.float32, device=dev)
    words = [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]
    starts = np.array([s for s, _ in words])
    totals = np.zeros(len(words))
    score = baseline = 0.0
    with torch.no_grad():
        h_av = model.encode_audio_visual(torch.as_tensor(audio[None], device=dev), torch.tensor([len(audio)], device=dev),
                                         torch.as_tensor(vision[None], device=dev), torch.tensor([len(vision)], device=dev))
    x, base = p.words, p.blank
    with torch.enable_grad():
        for w in range(len(p.ids)):     # one window at a time: steps + 2 sequences in one batch
            path = (base[w] + alphas[:, None, None] * (x[w] - base[w])).requires_grad_(True)
            f = _text_score(model, path, p.mask[w].expand(len(alphas), -1), p.types[w].expand(len(alphas), -1), h_av)
            grads, = torch.autograd.grad(f[:steps].sum(), path)
            ig = (grads[:steps].mean(0) * (x[w] - base[w])).sum(-1)                         # (width,)
            score += window_weight[w] * f[-1].item()
            baseline += window_weight[w] * f[-2].item()
            for (start, _), value in zip(p.spans[w][p.content[w].cpu().numpy()], ig[p.content[w]].detach().cpu().numpy()):
                totals[np.searchsorted(starts, start, side="right") - 1] += window_weight[w] * float(value)
    return WordAttributions([WordAttribution(word, float(a)) for (_, word), a in zip(words, totals)], score, baseline)


# ---- the voice ---------------------------------------------------------------------------------

@dataclass
class VoiceSummary:
    """What the acoustic strip shows, in numbers; None where the clip has no voiced frames (or no words)."""
    pitch_median_hz: float | None      # over voiced frames
    pitch_low_hz: float | None         # 10th percentile
    pitch_high_hz: float | None        # 90th percentile
    speaking_rate_wpm: float | None    # transcript words per minute of speaking time
    loudness_dbfs: float | None        # median frame level while voiced (0 dBFS = full scale)
    voiced_fraction: float             # share of the clip's audio frames that are voiced

    @property
    def pitch_range_semitones(self) -> float | None:
        return None if self.pitch_median_hz is None else 12 * float(np.log2(self.pitch_high_hz / self.pitch_low_hz))

    def line(self) -> str:
        """One sentence for a visitor."""
        if self.pitch_median_hz is None:
            return "Voice: no voiced speech was found, so there is no pitch or loudness to report."
        parts = [f"pitch {self.pitch_low_hz:.0f}–{self.pitch_high_hz:.0f} Hz (median {self.pitch_median_hz:.0f} Hz, "
                 f"a range of {self.pitch_range_semitones:.1f} semitones)"]
        if self.speaking_rate_wpm is not None:
            parts.append(f"about {self.speaking_rate_wpm:.0f} words a minute")
        parts.append(f"loudness {self.loudness_dbfs:.0f} dBFS while speaking (0 is the loudest a recording can hold)")
        return "Voice: " + " · ".join(parts) + f" · voiced {self.voiced_fraction:.0%} of the time."

    def to_json(self) -> dict:
        fields = {**self.__dict__, "pitch_range_semitones": self.pitch_range_semitones}
        return {k: None if v is None else round(float(v), 3) for k, v in fields.items()}


MIN_SPEAKING_S = 0.5    # a shorter span gives no meaningful words-per-minute


def summarise_voice(clip: ClipFeatures, n_words: int, words: list[TimedWord] | None = None) -> VoiceSummary:
    """Pitch and loudness from the acoustic frames the model reads (``ln f0``, ``voicing``, ``RMS dB``);
    speaking time from the recognised words' times when known, else from the first to the last voiced frame."""
    names = clip.spec.audio_features
    audio = clip.audio
    voiced = audio[:, names.index("voicing")] > VOICED
    if not voiced.any():
        return VoiceSummary(None, None, None, None, None, 0.0)
    f0 = np.exp(audio[voiced, names.index("log_f0")])
    level = audio[voiced, names.index("rms_db")]
    if words:
        speaking_s = words[-1].end_s - words[0].start_s
    else:
        frames = np.flatnonzero(voiced)
        speaking_s = (frames[-1] - frames[0] + 1) / clip.spec.audio_fps
    rate = 60 * n_words / speaking_s if n_words and speaking_s >= MIN_SPEAKING_S else None
    low, median, high = np.percentile(f0, [10, 50, 90])
    return VoiceSummary(float(median), float(low), float(high), rate, float(np.median(level)), float(voiced.mean()))
