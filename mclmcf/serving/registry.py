"""Loaded pipelines by weights source: the operator's default, kept, and visitors' sources in a few LRU slots."""

from __future__ import annotations

import os
import threading
import time

from mclmcf.serving.cache import LRUCache
from mclmcf.serving.pipeline import SentimentPipeline
from mclmcf.serving.untrusted import WeightsError, check_visitor_source
from mclmcf.serving.weights import build_weights, load_weights, locate_weights

REFUSAL_TTL_S = 300.0   # a visitor's weights value that failed to load is refused from memory this long


class PipelineRegistry:
    """Loaded pipelines by weights source (the app's "weights" setting), each loaded once.

    The operator's default stays loaded; visitors' sources share ``max_loaded`` LRU slots of their own, so
    no visitor value evicts the default or its feature cache. A visitor source that failed to download or
    load is refused from memory for ``REFUSAL_TTL_S`` (the ``max_refused`` most recent ones), without a new
    attempt. A visitor's download holds no lock that requests for loaded weights wait on."""

    def __init__(self, default_source: str | None = None, max_loaded: int = 1, max_refused: int = 256,
                 **pipeline_kwargs):
        self.default_source = default_source
        self._default_dir = os.path.realpath(default_source) if default_source and os.path.isdir(default_source) else None
        self.pipeline_kwargs = pipeline_kwargs
        self._default: SentimentPipeline | None = None
        self._default_lock = threading.Lock()
        self._loaded: LRUCache[SentimentPipeline] = LRUCache(max_loaded)
        self._refused: LRUCache[tuple[float, str]] = LRUCache(max_refused)   # source -> (when, message)

    def get(self, source: str | None = None) -> SentimentPipeline:
        """``source``: the visitor's weights value (empty: the operator's default). Raises
        weights.WeightsError / preprocessing.FeatureSpecMismatch (ValueErrors) when unusable."""
        key = str(source or "").strip()
        if not key or (key == self.default_source and self._default_dir is None):   # the operator's repo id, as typed
            return self._default or self._load_default()
        local_path = check_visitor_source(key)   # reads no file: answered anew each time
        local = local_path is not None
        if local:   # one key per directory, however it is spelled
            if local_path == self._default_dir:
                return self._default or self._load_default()
            key = local_path
        if (pipeline := self._loaded.get(key)) is not None:
            return pipeline
        refused = self._refused.get(key)
        if refused is not None and time.monotonic() - refused[0] < REFUSAL_TTL_S:
            raise WeightsError(refused[1])
        try:
            directory, label, notices = locate_weights(key, local=local, visitor=True)   # the download
            # builds are serialised (get_or_make's lock): two requests must not build the same weights twice
            return self._loaded.get_or_make(key, lambda: SentimentPipeline(
                build_weights(directory, label, notices, visitor=True), **self.pipeline_kwargs))
        except ValueError as err:
            self._refused.put(key, (time.monotonic(), str(err)))
            raise

    def _load_default(self) -> SentimentPipeline:
        with self._default_lock:   # loaded once, also when the first requests arrive together
            if self._default is None:
                self._default = SentimentPipeline(load_weights(self.default_source), **self.pipeline_kwargs)
            return self._default
