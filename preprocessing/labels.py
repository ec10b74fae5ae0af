"""labels.csv in either layout -> checked rows; every problem is reported with its file and row.

Two layouts, told apart by the header:
- this project's: ``clip, transcript, label, split`` (clip = path relative to the clips folder);
  optional ``label_T, label_A, label_V``.
- MMSA's raw datasets (CMU-MOSI / MOSEI / CH-SIMS ``label.csv``): ``video_id, clip_id, text, label,
  label_T, label_A, label_V, annotation, mode``; the clip is ``<video_id>/<clip_id>.mp4`` under
  ``Raw/`` and the sample id is MMSA's ``<video_id>$_$<clip_id>``.

For training every row needs a finite label within ``[-label_range, label_range]`` and a split; for
batch prediction (``require_labels=False``) label and split may be absent and the transcript column
may be missing altogether (``Row.transcript`` is then None).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = {"train": "train", "valid": "valid", "val": "valid", "dev": "valid", "test": "test"}
MODALITY_LABELS = ("label_T", "label_A", "label_V")
# layout -> (clip columns, transcript column, split column)
LAYOUTS = {
    "project": (("clip",), "transcript", "split"),
    "mmsa": (("video_id", "clip_id"), "text", "mode"),
}
MAX_LISTED = 20   # problems listed in one error message


class LabelsError(ValueError):
    """labels.csv cannot be used; the message lists each problem as FILE:ROW."""


@dataclass
class Row:
    line: int                     # row number in the file (the header is row 1)
    clip: str                     # path of the clip relative to the clips folder
    id: str                       # sample id in the dataset
    transcript: str | None        # None: the file has no transcript column
    label: float | None
    split: str | None
    modality_labels: dict[str, float] = field(default_factory=dict)   # label_T / label_A / label_V
    annotation: str | None = None
    transcript_source: str = ""   # typed / asr / none (empty and not transcribed); set from transcript if empty

    def __post_init__(self):
        self.transcript_source = self.transcript_source or ("typed" if self.transcript else "none")


@dataclass
class LabelTable:
    path: Path
    layout: str                   # "project" or "mmsa"
    rows: list[Row]
    modality_labels: tuple[str, ...]       # the per-modality label columns every row fills
    skipped: list[tuple[Row, str, str]]    # (row, error type, message): rows left out, for failures.csv
    warnings: list[str]


def detect_layout(path: Path, header: list[str]) -> str:
    for layout, (clip_cols, _, _) in LAYOUTS.items():
        if set(clip_cols) <= set(header):
            return layout
    raise LabelsError(f"{path}: header {header} is neither this project's layout (clip,transcript,label,split) "
                      "nor MMSA's (video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode)")


def read_labels(path: str | Path, require_labels: bool = True, label_range: float = 3.0) -> LabelTable:
    """Parse and check ``path``. Raises LabelsError listing every problem (up to MAX_LISTED) at once."""
    path = Path(path)
    try:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name
        with open(path, newline="", encoding="utf-8-sig") as f:
            records = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as err:
        raise LabelsError(f"{path}: cannot be read as a UTF-8 CSV file ({err})") from err
    if not records:
        raise LabelsError(f"{path}: empty file; expected a header row and one row per clip")
    header = [h.strip() for h in records[0]]
    layout = detect_layout(path, header)
    clip_cols, text_col, split_col = LAYOUTS[layout]
    required = [*clip_cols, *(("label", split_col) if require_labels else ())]
    if require_labels and text_col not in header:
        required.append(text_col)
    missing = [c for c in required if c not in header]
    if missing:
        raise LabelsError(f"{path}: missing column(s) {missing} for the {layout} layout (header: {header})")

    errors: list[str] = []
    parsed: list[Row] = []
    for line, values in enumerate(records[1:], start=2):
        if not any(v.strip() for v in values):
            continue                                  # blank line
        where = f"{path}:{line}"
        if len(values) != len(header):
            errors.append(f"{where}: {len(values)} field(s), the header has {len(header)} "
                          "(a missing comma, or an unquoted comma inside the transcript?)")
            continue
        r = {k: v.strip() for k, v in zip(header, values)}
        try:
            parsed.append(_row(r, line, layout, require_labels, label_range, where))
        except LabelsError as err:
            errors.append(str(err))
    if not parsed and not errors:
        errors.append(f"{path}: no data rows below the header")

    modality = tuple(c for c in MODALITY_LABELS if c in header and any(c in row.modality_labels for row in parsed))
    for row in parsed:
        for c in modality:
            if c not in row.modality_labels:
                errors.append(f"{path}:{row.line}: {c} is empty, but other rows have it (fill it in every row, "
                              "or leave the column empty everywhere)")
    rows, skipped, warnings = _deduplicate(parsed, path, errors)
    if errors:
        more = f"\n... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        raise LabelsError(f"{len(errors)} problem(s) in {path}:\n" + "\n".join(errors[:MAX_LISTED]) + more)
    return LabelTable(path, layout, rows, modality, skipped, warnings)


def _row(r: dict[str, str], line: int, layout: str, require_labels: bool, label_range: float, where: str) -> Row:
    clip_cols, text_col, split_col = LAYOUTS[layout]
    if layout == "mmsa":
        video_id, clip_id = r["video_id"], r["clip_id"]
        if not video_id or not clip_id:
            raise LabelsError(f"{where}: video_id and clip_id must both be given")
        clip, sample_id = f"{video_id}/{clip_id}.mp4", f"{video_id}$_${clip_id}"
    else:
        clip = sample_id = r["clip"]
        if not clip:
            raise LabelsError(f"{where}: the clip column is empty")
    label = _number(r.get("label", ""), "label", where, label_range, required=require_labels)
    split = None
    if r.get(split_col, ""):
        split = SPLITS.get(r[split_col].lower())
        if split is None:
            raise LabelsError(f"{where}: {split_col} {r[split_col]!r} is not one of train / valid / test")
    elif require_labels:
        raise LabelsError(f"{where}: {split_col} is empty; use train, valid or test")
    modality = {c: v for c in MODALITY_LABELS
                if (v := _number(r.get(c, ""), c, where, label_range, required=False)) is not None}
    transcript = r[text_col] if text_col in r else None
    return Row(line, clip, sample_id, transcript, label, split, modality, r.get("annotation") or None)


def _number(text: str, column: str, where: str, label_range: float, required: bool) -> float | None:
    if not text:
        if required:
            raise LabelsError(f"{where}: {column} is empty; every clip needs a sentiment score")
        return None
    try:
        value = float(text)
    except ValueError:
        raise LabelsError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise LabelsError(f"{where}: {column} {text!r} is not a finite number")
    if abs(value) > label_range:
        raise LabelsError(f"{where}: {column} {value:g} is outside [-{label_range:g}, {label_range:g}] "
                          "(use --label-range if your scale is wider)")
    return value


def _deduplicate(rows: list[Row], path: Path, errors: list[str]) -> tuple[list[Row], list, list[str]]:
    """The same clip in two splits leaks test data into training: an error. Twice in one split: the first
    row is kept, the repeat skipped with a warning."""
    first: dict[str, Row] = {}
    kept, skipped, warnings = [], [], []
    for row in rows:
        seen = first.setdefault(row.clip, row)
        if seen is row:
            kept.append(row)
        elif seen.split != row.split:
            errors.append(f"{path}:{row.line}: clip {row.clip} is in split {row.split!r} and also in "
                          f"{seen.split!r} (row {seen.line}): a clip may be in one split only")
        else:
            message = f"{path}:{row.line}: clip {row.clip} repeats row {seen.line} (same split); the repeat is skipped"
            warnings.append(message)
            skipped.append((row, "DuplicateClip", message))
    return kept, skipped, warnings
