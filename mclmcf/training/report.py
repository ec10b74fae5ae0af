"""What a training run leaves behind: loss / metric curves, the from_pretrained directory and its card."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from mclmcf.model import MCLMCF
from mclmcf.model.config import MCLMCFConfig
from preprocessing.dataformat import atomic_write, usual_mode

CARD_KEYS = ("mae", "corr", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc2", "f1", "acc3", "acc5", "acc7")


def plot_curves(history: list[dict], path: Path, synthetic: bool = False) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for key, label in (("train_loss", "total"), ("train_loss_reg", "L1")):
        axes[0].plot(epochs, [h[key] for h in history], label=label)
    axes[0].set_title("training loss")
    axes[0].legend()
    for ax, key in zip(axes[1:], ("valid_mae", "valid_corr")):
        ax.plot(epochs, [h.get(key, float("nan")) for h in history], marker=".")
        ax.set_title(key.replace("_", " "))
    for ax in axes:
        ax.set_xlabel("epoch")
    if synthetic:
        fig.suptitle("SYNTHETIC planted-signal data")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)


def small_run_note(result: dict, train_samples: int) -> str | None:
    """What to read from a run whose test MAE does not beat predicting the training mean (None when it does)."""
    mae, mean_mae = result["test"]["mae"], result["baseline_mean_mae"]
    if mae < mean_mae:          # False for NaN: a diverged run does not beat it either
        return None
    losses = [h["train_loss"] for h in result["history"]]
    rising = (f" and the training loss rose ({losses[0]:.2f} -> {losses[-1]:.2f})"
              if len(losses) > 1 and losses[-1] > losses[0] else "")
    return (f"note: the model does not beat predicting the training mean (test MAE {mae:.3f} vs {mean_mae:.3f}){rising}: "
            f"{train_samples} training samples x {result['epochs_run']} epoch(s) is too small or too short to learn "
            "from. For scale, as measured on the synthetic set: 280 training samples x 4 epochs (MiniLM fine-tuned) reach "
            "MAE 0.31-0.41 against 0.76 for the mean (benchmarks/README.md, Quality check), 700 x 20 epochs (tiny "
            "model) 0.51 against 0.78 (docs/model.md); CMU-MOSI has 1,284 training clips and the authors train up to "
            "200 epochs. Give the run more samples or more epochs (--epochs, --patience).")


def model_card(result: dict) -> str:
    synthetic = result["synthetic"]
    test = result["test"]
    rows = "\n".join(f"| {k} | {test[k]:.4f} |" for k in CARD_KEYS if k in test)
    cfg = result["model_config"]
    encoder_note = (f", frozen and not stored here: loading resolves it (installed package, local folder or the Hub) "
                    f"and checks the SHA-256 of its weights, `{cfg['text_encoder_sha256']}`"
                    if MCLMCFConfig.from_dict(cfg).text_encoder_by_reference else " (stored in the weights)")
    data_line = ("**SYNTHETIC planted-signal data** (mclmcf.training.synthetic): these numbers say the pipeline learns, "
                 "nothing about real sentiment." if synthetic else f"`{result['data']}` ({result['train_config']['dataset']} preset).")
    return f"""---
library_name: mclmcf
license: mit
tags: [multimodal-sentiment-analysis, mcl-mcf{", synthetic-data" if synthetic else ""}]
---

# MCL-MCF {"(trained on SYNTHETIC data)" if synthetic else ""}

MCL-MCF (multi-level contrastive learning + multimodal convolutional fusion) for multimodal sentiment
analysis, trained with `python -m mclmcf.train`. Inference weights only (contrastive heads dropped).

## Data

{data_line}

Feature standardisation statistics (training split) are stored in the weights. Text encoder:
`{cfg["text_encoder"]}`{encoder_note}; acoustic features {cfg["audio_dim"]}-d, visual {cfg["visual_dim"]}-d.

## Test metrics (best validation epoch {result["best_epoch"]})

| metric | value |
|---|---|
{rows}

Predict-the-training-mean MAE on the same test set: {result["baseline_mean_mae"]:.4f}.

## Use

```python
from mclmcf.model import MCLMCF
model = MCLMCF.from_pretrained("path/or/repo_id")
```

## Training configuration

```json
{json.dumps(result["train_config"], indent=1, default=str)}
```

## Model configuration

```json
{json.dumps({k: v for k, v in cfg.items() if k not in ("text_encoder_config", "notes")}, indent=1, default=str)}
```
"""


def write_model_dir(model: MCLMCF, directory: Path, result: dict) -> Path:
    """``MCLMCF.from_pretrained(directory)`` loads it: config.json, model.safetensors, tokenizer, README.md.
    Written whole into a temp folder beside it, then renamed into place: a crash never leaves a partial
    ``directory`` that looks like weights (an older one stays until the new one is complete)."""
    inference = model.for_inference()
    inference.config.notes = {**inference.config.notes, "test_metrics": result["test"], "synthetic_data": result["synthetic"],
                              "data": result["data"], "best_epoch": result["best_epoch"]}
    directory = Path(directory)
    staged = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        inference.save_pretrained(staged)
        (staged / "README.md").write_text(model_card(result))
        for path in [*staged.iterdir(), staged]:
            _fsync(path)
        usual_mode(staged)
        _replace_dir(staged, directory)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return directory


def _replace_dir(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an existing ``target`` is moved aside first (rename onto an empty temp
    folder, named as remove_stale_temp_files cleans up) and deleted once ``new`` is in place."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        os.rename(target, old)
    os.rename(new, target)
    _fsync(target.parent)
    if old is not None:
        shutil.rmtree(old)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def push_to_hub(directory: Path, repo_id: str) -> str:
    """Upload the model directory as is (a thin call; needs network and a token). Returns the repo's URL
    on the endpoint used ($HF_ENDPOINT, else huggingface.co)."""
    from huggingface_hub import HfApi
    api = HfApi()
    url = api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(directory))
    return str(url)
