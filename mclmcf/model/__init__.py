"""The network as the paper defines it (network.py), its config, losses, low-rank adapters and text encoder."""

from mclmcf.model.config import MCLMCFConfig
from mclmcf.model.network import MCLMCF

__all__ = ["MCLMCF", "MCLMCFConfig"]
