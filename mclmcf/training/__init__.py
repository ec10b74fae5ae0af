"""Training: the CLI, the loop, TrainConfig and presets, data loading, checkpoints, metrics and the paper's experiments."""
