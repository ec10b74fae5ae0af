"""The Hugging Face Hub, reachable or not: checked once and fast, before any download is tried."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from huggingface_hub import constants


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """One TCP connect to the Hub endpoint: an air-gapped machine fails here at once instead of after
    huggingface_hub's ~25 s of retries."""
    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout_s).close()
        return True
    except OSError:
        return False
