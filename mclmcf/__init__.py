"""MCL-MCF: multi-level contrastive learning + multimodal convolutional fusion for sentiment analysis."""

__version__ = "0.1.0"
