"""Batch prediction through the app's pipeline: clips named on the command line, or a folder of clips + a labels CSV.

    python -m mclmcf.predict CLIP [CLIP ...] [--transcript TEXT ...] [--out scores.csv] [--weights SOURCE]
    python -m mclmcf.predict --clips DIR --labels LABELS.csv --out scores.csv [--weights SOURCE]
                             [--workers N] [--resume] [--max-duration S] [--max-file-mb MB]

Clips on the command line: one ``--transcript`` per clip, in order (an empty one, or none at all: speech
recognition writes it); one line per clip is printed (score, class, the transcript read, the notices), and
``--out`` also writes them as a CSV. LABELS.csv is either layout of preprocessing.labels (this project's
``clip,transcript[,label,split]`` or MMSA's ``label.csv``); label and split are optional here and only copied to
the output. Every clip goes through ``mclmcf.serving.pipeline`` (PipelineRegistry -> SentimentPipeline.predict)
exactly as an upload to the app does: same weights resolution (--weights, $MCLMCF_WEIGHTS, checkpoints/), features,
tokenisation and model call.

Transcripts come from the CSV's transcript column (``transcript_source`` "typed"). A clip without one
is transcribed by the pipeline's speech recognition (``--asr-model``, as the app; ``transcript_source``
"asr"); where none is available, such clips are refused with a message saying so.

scores.csv: one row per clip, written as clips finish (a kill loses only the clips in flight) and
sorted into the CSV's order at the end. --resume keeps every scored row and does the rest; rows with
an error are tried again.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from concurrent.futures import as_completed
from pathlib import Path

from tqdm import tqdm

from preprocessing.dataformat import atomic_write
from preprocessing.labels import LabelsError, Row, read_labels
from preprocessing.workers import worker_pool

from mclmcf.serving.registry import PipelineRegistry

COLUMNS = ("id", "clip", "score", "sentiment_class", "polarity", "label", "transcript_source", "duration_s",
           "face_fraction", "transcript", "notices", "error")
NO_ASR = "has no transcript and no speech recognition is available"
_worker: dict = {}   # this process's pipeline registry (one per worker process)


def _init(weights: str | None, pipeline_kwargs: dict, threads: int | None) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)
    _worker.update(registry=PipelineRegistry(weights, **pipeline_kwargs))


def score_row(path: str, row: Row) -> dict:
    """One clip through the pipeline; any failure becomes the row's error instead of stopping the batch."""
    out = dict.fromkeys(COLUMNS, "")
    out.update(id=row.id, clip=row.clip, label="" if row.label is None else row.label)
    try:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} does not exist")
        pred = _worker["registry"].get().predict(path, row.transcript, explain=False)   # empty transcript: ASR
        out.update(score=round(pred.score, 4), sentiment_class=pred.sentiment_class, polarity=pred.polarity,
                   transcript_source=pred.transcript_source, duration_s=round(pred.clip.duration_s, 3),
                   face_fraction=round(pred.clip.face_fraction, 3), transcript=pred.transcript,
                   notices=" | ".join(pred.notices))
    except Exception as err:  # a bad clip (or a bug on an exotic file) is reported in its row
        out["error"] = f"{type(err).__name__}: {err}"
    return out


def finished_rows(out: Path) -> dict[str, dict]:
    """Scored rows of an earlier run (by id); error rows and a line cut off by a kill are dropped."""
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    done = {}
    for r in rows:
        try:
            float(r.get("score") or "")
        except ValueError:
            continue
        if None not in r.values() and not r["error"]:
            done[r["id"]] = r
    return done


def write_rows(out: Path, rows: list[dict]) -> None:
    def write(p):
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, COLUMNS)
            w.writeheader()
            w.writerows(rows)
    atomic_write(out, write)


def command_line_rows(clips: list[Path], transcripts: list[str]) -> list[Row]:
    """Rows for clips named on the command line: the i-th transcript is the i-th clip's; none: speech recognition."""
    if transcripts and len(transcripts) != len(clips):
        raise SystemExit(f"error: {len(clips)} clip(s) but {len(transcripts)} --transcript: give one per clip, in "
                         "order (\"\" for speech recognition), or none to transcribe them all")
    return [Row(line=i, clip=str(clip), id=str(i), transcript=text or None, label=None, split=None)
            for i, (clip, text) in enumerate(zip(clips, transcripts or [""] * len(clips)), start=1)]


def print_rows(rows: list[dict]) -> None:
    """One line per clip: score, class, the transcript read (and where it came from), then its notices."""
    for r in rows:
        if r["error"]:
            print(f"{r['clip']}: {r['error']}")
            continue
        print(f"{r['clip']}: {float(r['score']):+.2f} {r['sentiment_class']} ({r['transcript_source']}: "
              f"\"{r['transcript']}\")")
        for notice in filter(None, r["notices"].split(" | ")):
            print(f"  note: {notice}")


def run_predict(clips: Path, labels: Path | list[Row], out: Path | None, weights: str | None = None, workers: int = 1,
                resume: bool = False, **pipeline_kwargs) -> dict:
    """``labels``: a labels CSV, or rows already made (command_line_rows, paths relative to ``clips``). ``out``
    None: the rows are printed, not written. Raises LabelsError / weights errors (ValueError) / SystemExit with a
    message for unusable input."""
    if isinstance(labels, list):
        table_rows, source = labels, "the command line"
    else:
        table = read_labels(labels, require_labels=False, label_range=float("inf"))
        table_rows, source = table.rows, str(labels)
    if out is not None and out.exists() and not resume:
        raise SystemExit(f"error: {out} exists; pass --resume to continue it, or remove it to start again")
    done = finished_rows(out) if out is not None and resume and out.exists() else {}
    todo = [r for r in table_rows if r.id not in done]

    _init(weights, pipeline_kwargs, None)
    pipeline = _worker["registry"].get()      # load once here: unusable weights stop before any clip
    if pipeline.asr is None and any(not r.transcript for r in table_rows):
        raise SystemExit(f"error: {source} {NO_ASR} ({pipeline.asr_status}): give what is said in each clip "
                         "(a transcript column or cell, or --transcript)")
    for notice in pipeline.weights.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(f"weights {pipeline.weights.source} on {pipeline.weights.device}; {len(todo)} clip(s) to score, "
          f"{len(done)} done earlier", file=sys.stderr)

    results = list(done.values())
    if out is not None:
        write_rows(out, results)
    with open(out if out is not None else os.devnull, "a", newline="", encoding="utf-8") as f, \
            tqdm(total=len(todo), desc="predicting", unit="clip", disable=not todo) as bar:
        writer = csv.DictWriter(f, COLUMNS)

        def record(result: dict) -> None:
            writer.writerow(result)
            f.flush()
            results.append(result)
            bar.update()

        jobs = [(str(clips / r.clip), r) for r in todo]
        if workers > 1 and len(jobs) > 1:
            _worker.clear()                   # the workers load their own copy
            threads = max(1, (os.cpu_count() or 1) // workers)
            with worker_pool(workers, _init, (weights, pipeline_kwargs, threads)) as pool:
                for future in as_completed([pool.submit(score_row, *job) for job in jobs]):
                    record(future.result())
        else:
            for job in jobs:
                record(score_row(*job))

    order = {r.id: i for i, r in enumerate(table_rows)}
    results.sort(key=lambda r: order.get(r["id"], len(order)))
    errors = sum(1 for r in results if r["error"])
    summary = {"clips": len(table_rows), "scored": len(results) - errors, "errors": errors,
               "resumed": len(done), "skipped_rows": 0 if isinstance(labels, list) else len(table.skipped)}
    if isinstance(labels, list):
        print_rows(results)
    if out is None:
        return summary
    write_rows(out, results)
    print(f"{summary['clips']} clips: {summary['scored']} scored ({len(done)} from the earlier run), "
          f"{errors} with an error (see the error column) -> {out}")
    return summary


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m mclmcf.predict", description=__doc__.split("\n")[0],
                                 epilog="example: python -m mclmcf.predict examples/positive.mp4 examples/negative.mp4")
    ap.add_argument("clip", type=Path, nargs="*", help="clips to score (instead of --clips and --labels)")
    ap.add_argument("--transcript", action="append", default=[],
                    help="what is said in a clip given as CLIP: once per clip, in order; none: speech recognition")
    ap.add_argument("--clips", type=Path, help="folder the CSV's clip paths are relative to")
    ap.add_argument("--labels", type=Path,
                    help="CSV: clip,transcript[,label,split] or MMSA's label.csv (video_id,clip_id,text,...)")
    ap.add_argument("--out", type=Path, help="scores CSV to write (required with --labels)")
    ap.add_argument("--weights", help="Hub repo id[@revision] or local directory (default: as the app)")
    ap.add_argument("--workers", type=int, default=1, help="parallel processes, each with its own model copy")
    ap.add_argument("--resume", action="store_true", help="keep the scored rows of --out and do the rest")
    ap.add_argument("--max-duration", type=float, default=60.0, help="longest clip in seconds (app: 60)")
    ap.add_argument("--max-file-mb", type=float, default=50.0, help="largest clip file in MB (app: 50)")
    ap.add_argument("--asr-model", default=None, help="speech recognition for clips without a transcript "
                                                      "(as app.py --asr-model; 'none' turns it off)")
    a = ap.parse_args(argv)
    if a.clip and (a.clips or a.labels):
        ap.error("give clips as arguments, or --clips and --labels, not both")
    if not a.clip and not (a.clips and a.labels and a.out):
        ap.error("give clips as arguments (e.g. examples/positive.mp4), or --clips, --labels and --out")
    if a.transcript and not a.clip:
        ap.error("--transcript goes with clips given as arguments; a labels CSV has its own transcript column")
    labels = command_line_rows(a.clip, a.transcript) if a.clip else a.labels
    try:
        return run_predict(a.clips or Path("."), labels, a.out, a.weights, a.workers, a.resume,
                           max_duration_s=a.max_duration, max_file_bytes=round(a.max_file_mb * 1e6), asr_model=a.asr_model)
    except (LabelsError, ValueError) as err:   # labels, weights (WeightsError, FeatureSpecMismatch)
        raise SystemExit(f"error: {err}") from None
