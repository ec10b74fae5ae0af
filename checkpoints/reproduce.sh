#!/usr/bin/env bash
# Rebuild the demo weights in checkpoints/ from scratch, offline but for `pip download` of the data.
#   1. the training set: 19,995 human-rated snippets (movie reviews, tweets, NYT editorials) and the held-out
#      Amazon split, voiced and filmed locally (feature spec version 2)
#   2. training with the project's CLI (config: checkpoints/demo_train.json)
#   3. the inference weights copied here, and the model card's tables recomputed beside VADER's
set -euo pipefail
cd "$(dirname "$0")/.."

python -m preprocessing.rated_snippets --out data/rated_snippets --workers 2
python -m mclmcf.train --config checkpoints/demo_train.json
cp runs/demo/model/config.json runs/demo/model/model.safetensors checkpoints/
cp runs/demo/model/tokenizer.json runs/demo/model/tokenizer_config.json checkpoints/
cp runs/demo/metrics.json checkpoints/training_metrics.json
cp runs/demo/curves.png checkpoints/training_curves.png
chmod 644 checkpoints/config.json checkpoints/model.safetensors checkpoints/tokenizer*.json checkpoints/training_*
python benchmarks/demo_accuracy.py --weights checkpoints --data data/rated_snippets
python benchmarks/bench_negation.py --weights checkpoints
