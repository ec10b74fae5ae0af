"""The demo's training set: human-rated English snippets, voiced and "filmed" locally.

    python -m preprocessing.rated_snippets --out data/rated_snippets [--domains movie tweets nyt] [--workers 2]
                                           [--spec-version V] [--speech-cache DIR]

Source: Hutto & Gilbert (ICWSM 2014), shipped inside the vaderSentiment 3.3.2 source distribution (MIT
licence; fetched with `pip download`, or pass --vader-sdist). Four domains, each snippet with the mean
rating of 10-20+ people on [-4, 4] (rescaled by 3/4 to CMU-MOSI's [-3, 3]), the raters' standard
deviation and their number (kept as ``rater_sd`` and ``n_raters``, for agreement weights):

  movie    10,605 movie-review snippets          train / valid / test 80/10/10 (seed 0)
  tweets    4,200 tweets                          train / valid / test 80/10/10 (seed 0)
  nyt       5,190 New York Times editorial snippets  train / valid / test 80/10/10 (seed 0)
  amazon    3,708 Amazon product-review snippets  only in the split "amazon": never trained on and
                                                  never used to choose anything (the untouched
                                                  cross-domain check)

``domain`` names each sample's domain, so metrics can be read per domain. The movie split and ids are
those of the earlier movie-only set (same seed, ids ``snippet_N``).

Only the text carries the human rating. The acoustic stream is the snippet spoken by espeak-ng
(a neutral synthetic voice) through ``preprocessing.audio``; the visual stream comes from a pool of
face clips made from a real photograph with varied motion (``preprocessing.synthetic``) through
``preprocessing.extract_clip``, one pool clip assigned to each sample at random. Neither carries
sentiment, so a model trained here learns its sentiment from the transcript. Text is stored raw
(``raw_text``): training tokenizes it with the model's own tokenizer.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .dataformat import pad_sequences, save_safe, write_npy

from .audio import audio_features
from .clip import extract_clip
from .spec import SPEC_VERSION, VISUAL_FEATURES_BY_VERSION, FeatureSpec
from .synthetic import make_face_clip, speak

ARCHIVE = "hutto_ICWSM_2014"
DOMAIN_FILES = {"movie": "movieReviewSnippets", "tweets": "tweets", "nyt": "nytEditorialSnippets",
                "amazon": "amazonReviewSnippets"}
TRAINING_DOMAINS = ("movie", "tweets", "nyt")
HELD_OUT_DOMAIN = "amazon"
SDIST = "vaderSentiment==3.3.2"
LABEL_SCALE = 3 / 4                # [-4, 4] -> [-3, 3]
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SEED = 0
POOL_SIZE = 24                     # distinct face clips the visual stream is drawn from
POOL_SECONDS = 4.0
MAX_SPEECH_SECONDS = 10.0          # longer snippets are cut (a handful)
# what the acoustic features depend on (a new visual spec version keeps the voiced features)
AUDIO_SPEC_FIELDS = ("sample_rate", "hop_length", "n_fft", "n_mels", "fmin_hz", "fmax_hz", "audio_features")
CITATION = ("Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
            "Analysis of Social Media Text. ICWSM-14.")


@dataclass
class Snippets:
    ids: list[str]
    texts: list[str]
    ratings: np.ndarray      # (N,) mean human rating on [-4, 4]
    rater_sd: np.ndarray     # (N,) standard deviation of the individual ratings
    n_raters: np.ndarray     # (N,)


def fetch_sdist(dest: Path) -> Path:
    """Download the vaderSentiment source distribution from the package index (no model hub needed)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
                    "-d", str(dest), SDIST], check=True)
    found = sorted(dest.glob("vaderSentiment-3.3.2.tar.gz"))
    if not found:
        raise SystemExit(f"pip download {SDIST} produced no sdist in {dest}")
    return found[0]


def _archive_files(sdist: Path, names: list[str]) -> dict[str, str]:
    with tarfile.open(sdist) as outer:
        inner = next(m for m in outer.getmembers() if m.name.endswith(f"{ARCHIVE}.tar.gz"))
        with tarfile.open(fileobj=io.BytesIO(outer.extractfile(inner).read())) as tar:
            return {n: tar.extractfile(f"{ARCHIVE}/{n}").read().decode("utf-8-sig") for n in names}


def read_domain(sdist: Path, domain: str) -> Snippets:
    """One domain's snippets with their mean rating and the raters' spread, in file order."""
    stem = DOMAIN_FILES[domain]
    files = _archive_files(sdist, [f"{stem}_GroundTruth.txt", f"{stem}_anonDataRatings.txt"])
    spread = {}
    for line in files[f"{stem}_anonDataRatings.txt"].splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            spread[parts[0].strip()] = (float(parts[2]), len(json.loads(parts[3])))
    ids, texts, ratings, sd, n = [], [], [], [], []
    for line in files[f"{stem}_GroundTruth.txt"].splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip():
            key = parts[0].strip()
            ids.append(key)
            texts.append(parts[2].strip().replace("''", '"'))
            ratings.append(float(parts[1]))
            sd.append(spread.get(key, (np.nan, 0))[0])
            n.append(spread.get(key, (np.nan, 0))[1])
    return Snippets(ids, texts, np.asarray(ratings, np.float32), np.asarray(sd, np.float32), np.asarray(n, np.int64))


def assign_splits(n: int, seed: int = SPLIT_SEED) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_valid = int(SPLIT_FRACTIONS[0] * n), int(SPLIT_FRACTIONS[1] * n)
    split = np.empty(n, dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train:n_train + n_valid]] = "valid"
    split[order[n_train + n_valid:]] = "test"
    return split


def sample_id(domain: str, index: int, file_id: str) -> str:
    return f"snippet_{index + 1}" if domain == "movie" else f"{domain}_{file_id}"


def spoken_features(text: str) -> np.ndarray:
    """espeak-ng speaks ``text``; the same acoustic features the app computes from a clip's sound track."""
    spec = FeatureSpec()
    return audio_features(speak(text, spec.sample_rate)[: int(MAX_SPEECH_SECONDS * spec.sample_rate)], spec)


def voice_all(texts: list[str], cache_root: Path, workers: int) -> list[np.ndarray]:
    """Acoustic features of every text, cached one file per text under ``cache_root``/<acoustic settings>/:
    voicing is the slow stage, so an interrupted build resumes where it stopped and a new visual spec version
    reuses the voiced features."""
    spec = FeatureSpec().to_dict()
    settings = {**{k: spec[k] for k in AUDIO_SPEC_FIELDS}, "librosa": spec["libraries"]["librosa"],
                "max_speech_seconds": MAX_SPEECH_SECONDS}
    folder = cache_root / hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(settings))
    path_of = {t: folder / f"{hashlib.sha256(t.encode()).hexdigest()}.npy" for t in texts}
    todo = [t for t, path in path_of.items() if not path.is_file()]
    with ProcessPoolExecutor(workers) as ex:
        voiced = ex.map(spoken_features, todo, chunksize=16)
        for text, features in tqdm(zip(todo, voiced), total=len(todo), desc="speech"):
            write_npy(path_of[text], features)
    return [np.load(path_of[t]) for t in texts]


def face_pool(workdir: Path, spec: FeatureSpec) -> list[np.ndarray]:
    """Visual features of POOL_SIZE generated face clips with different motion, mouth and seed."""
    pool = []
    for i in tqdm(range(POOL_SIZE), desc="face clips"):
        path = make_face_clip(workdir / f"face_{i:02d}.mp4", duration_s=POOL_SECONDS, fps=10, size=(480, 270),
                              motion=("still", "sway")[i % 2], mouth=("closed", "talk", "open")[i % 3],
                              audio="silence", seed=i)
        pool.append(extract_clip(path, spec, expressions=False).vision)
    return pool


def padded_rows(rows: list[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pad_sequences` of (frames_i, dim) feature rows. No rows (a split that ``--limit`` left empty) still
    give a (0, 1, dim) array: validation checks every split's feature size."""
    if not rows:
        return np.zeros((0, 1, dim), np.float32), np.zeros(0, np.int64)
    return pad_sequences(rows)


def build(out: Path, sdist: Path | None, domains: list[str], workers: int, limit: int | None,
          spec: FeatureSpec = FeatureSpec(), speech_cache: Path | None = None) -> Path:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed to voice the snippets: apt-get install espeak-ng")
    rows = []   # (split, domain, id, text, rating, sd, n)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = sdist or fetch_sdist(Path(tmp))
        for domain in [*domains, HELD_OUT_DOMAIN]:
            s = read_domain(sdist, domain)
            splits = assign_splits(len(s.texts)) if domain != HELD_OUT_DOMAIN else np.full(len(s.texts), domain, object)
            keep = range(min(len(s.texts), limit or len(s.texts)))
            rows += [(splits[i], domain, sample_id(domain, i, s.ids[i]), s.texts[i], s.ratings[i], s.rater_sd[i],
                      s.n_raters[i]) for i in keep]
        pool = face_pool(Path(tmp), spec)
    audio = voice_all([r[3] for r in rows], speech_cache or out / "speech_cache", workers)
    face_of = np.random.default_rng(SPLIT_SEED + 1).integers(0, POOL_SIZE, len(rows))
    data = {}
    for split in ("train", "valid", "test", HELD_OUT_DOMAIN):
        idx = [i for i, r in enumerate(rows) if r[0] == split]
        audio_arr, audio_lengths = padded_rows([audio[i] for i in idx], spec.audio_dim)
        vision_arr, vision_lengths = padded_rows([pool[face_of[i]] for i in idx], spec.visual_dim)
        data[split] = {
            "id": [rows[i][2] for i in idx], "domain": [rows[i][1] for i in idx], "raw_text": [rows[i][3] for i in idx],
            "audio": audio_arr, "audio_lengths": audio_lengths, "vision": vision_arr, "vision_lengths": vision_lengths,
            "regression_labels": np.array([rows[i][4] * LABEL_SCALE for i in idx], np.float32),
            "rater_sd": np.array([rows[i][5] * LABEL_SCALE for i in idx], np.float32),
            "n_raters": np.array([rows[i][6] for i in idx], np.int64),
        }
    counts = {s: {d: sum(1 for r in rows if r[0] == s and r[1] == d) for d in [*domains, HELD_OUT_DOMAIN]}
              for s in data}
    info = {"name": "human-rated snippets, voiced (espeak-ng) and filmed (synthetic face)",
            "source": f"{ARCHIVE}.tar.gz in the {SDIST} sdist (MIT licence)", "citation": CITATION,
            "domains": list(domains), "held_out": f"split {HELD_OUT_DOMAIN!r}: never trained on or tuned on",
            "label_scale": f"human mean rating on [-4, 4] x {LABEL_SCALE} -> [-3, 3] (rater_sd on the same scale)",
            "signal": "text only: the acoustic and visual streams carry no sentiment",
            "split_seed": SPLIT_SEED, "counts": counts, "feature_spec": spec.to_dict()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "splits.json").write_text(json.dumps({r[2]: r[0] for r in rows}))
    return save_safe(data, out, info=info)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/rated_snippets"))
    parser.add_argument("--vader-sdist", type=Path, help="vaderSentiment-3.3.2.tar.gz (else pip download)")
    parser.add_argument("--domains", nargs="+", choices=TRAINING_DOMAINS, default=list(TRAINING_DOMAINS),
                        help=f"training domains ({HELD_OUT_DOMAIN} is always written, as its own split)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, help="only the first N snippets of each domain (smoke runs)")
    parser.add_argument("--spec-version", type=int, choices=sorted(VISUAL_FEATURES_BY_VERSION), default=SPEC_VERSION,
                        help="FeatureSpec version of the visual features (the acoustic ones are the same in every version)")
    parser.add_argument("--speech-cache", type=Path, help="where voiced features are cached (default OUT/speech_cache)")
    args = parser.parse_args(argv)
    out = build(args.out, args.vader_sdist, args.domains, args.workers, args.limit,
                FeatureSpec.of_version(args.spec_version), args.speech_cache)
    print(f"wrote {out} (safe format; load with preprocessing.dataformat.load_safe)")


if __name__ == "__main__":
    main()
